//! Health for Docker and proxies on real nodes: `galera-init healthcheck`, `/live`,
//! `/health`, `/master`, `/status`, `/metrics` and `galera-init status` in each state of a
//! node's life, across an SST, when cut off, when mariadbd stops answering, and while
//! draining after SIGTERM.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::kit::*;
use crate::lab::{Lab, wait_until};

/// The seed walk-through, watched by every health interface: a node waiting for DNS, a
/// bootstrapped node, a joiner across its whole SST (and the donor), the writer, the
/// `status` table, a mariadbd that stops answering, and a drain on SIGTERM.
#[test]
fn health_through_a_nodes_life() {
    let mut lab = Lab::new("healthsvc");
    let env = env(&lab);
    let n1 = lab.node(1);
    let a1 = n1.addr;

    // Not listed in DNS yet (Swarm lists a task once it is healthy): alive, not ready.
    let r1 = start(&n1, &env);
    assert!(
        r1.wait_log("DNS not ready", Duration::from_secs(30)),
        "{}",
        r1.log()
    );
    let (live, body) = http(a1, "/live").expect("/live answers while DNS is not ready");
    assert_eq!(live, 200, "{body}");
    assert!(body.contains("DNS"), "{body}");
    assert_eq!(code(a1, "/health"), 503);
    assert_eq!(code(a1, "/"), 503);
    assert_eq!(code(a1, "/master"), 503);
    let (rc, out) = galera_init_in(&lab, &r1, &["healthcheck"]);
    assert_eq!(rc, 0, "{out}");
    assert!(out.starts_with("healthy: waiting for DNS"), "{out}");
    let (rc, out) = galera_init_in(&lab, &r1, &["healthcheck", "--ready"]);
    assert_eq!(rc, 1, "{out}");
    let table = status_table(&lab, &[&a1.to_string()]);
    assert!(
        table.contains("Waiting (waiting for DNS to list this node)"),
        "{table}"
    );

    // Listed: it bootstraps and becomes the writer.
    lab.set_dns(&[a1]);
    assert_one_cluster(&[a1], &[&r1]);
    assert!(
        wait_until(Duration::from_secs(10), || code(a1, "/master") == 200),
        "the only node becomes the writer"
    );
    assert_eq!(code(a1, "/health"), 200);
    let (rc, out) = galera_init_in(&lab, &r1, &["healthcheck", "--ready"]);
    assert_eq!(rc, 0, "{out}");
    let (_, metrics) = http(a1, "/metrics").unwrap();
    for line in [
        "mysql_global_status_wsrep_cluster_size 1",
        "mysql_global_status_wsrep_local_state 4",
        "mysql_global_status_wsrep_ready 1",
        "galera_init_phase{phase=\"running\"} 1",
        "galera_init_mariadbd_starts_total 1",
        "galera_init_writer 1",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in:\n{metrics}");
    }
    let (_, status) = http(a1, "/status").unwrap();
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["writer"]["ok"], true, "{status}");
    assert_eq!(status["node"]["phase"], "running", "{status}");

    // mariadbd stops answering (SIGSTOP): unhealthy once UNANSWERED_GRACE has passed.
    let pid = r1.mariadbd_pid().expect("mariadbd runs");
    let pid = nix::unistd::Pid::from_raw(pid);
    nix::sys::signal::kill(pid, Signal::SIGSTOP).unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || code(a1, "/health") == 503),
        "a server that does not answer cannot serve"
    );
    assert_eq!(code(a1, "/live"), 200, "not at once: it may be busy");
    let stuck = wait_until(Duration::from_secs(60), || code(a1, "/live") == 503);
    let (rc, out) = galera_init_in(&lab, &r1, &["healthcheck"]);
    nix::sys::signal::kill(pid, Signal::SIGCONT).unwrap();
    assert!(stuck, "unhealthy once mariadbd stopped answering");
    assert_eq!(rc, 1, "{out}");
    assert!(out.contains("has not answered"), "{out}");
    assert!(
        wait_until(Duration::from_secs(30), || code(a1, "/live") == 200
            && code(a1, "/health") == 200),
        "healthy again once it answers"
    );

    // A joiner: healthy through its whole SST; the two never both claim the writer.
    let n2 = lab.node(2);
    let a2 = n2.addr;
    lab.set_dns(&[a1, a2]);
    let r2 = start(&n2, &env);
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut seen_sst = false;
            let mut unhealthy = Vec::new();
            let mut both = 0;
            while !done.load(Ordering::SeqCst) {
                if let Some((c, body)) = http(a2, "/live") {
                    let b = body.to_lowercase();
                    seen_sst |= b.contains("state transfer") || b.contains("joining");
                    if c != 200 {
                        unhealthy.push(body);
                    }
                }
                if code(a1, "/master") == 200 && code(a2, "/master") == 200 {
                    both += 1;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            (seen_sst, unhealthy, both)
        })
    };
    assert_one_cluster(&[a1, a2], &[&r1, &r2]);
    // Watch on while the writer settles (a new member with a lower index takes over after
    // its hold-off).
    let one_writer = || {
        [a1, a2]
            .into_iter()
            .filter(|a| code(*a, "/master") == 200)
            .count()
            == 1
    };
    assert!(
        wait_until(Duration::from_secs(30), one_writer),
        "one writer once both are Synced"
    );
    done.store(true, Ordering::SeqCst);
    let (seen_sst, unhealthy, both) = watcher.join().unwrap();
    assert!(seen_sst, "the watcher saw the joiner's state transfer");
    assert!(
        unhealthy.is_empty(),
        "unhealthy during the join: {unhealthy:?}"
    );
    assert_eq!(both, 0, "two writers at once");
    let (rc, out) = galera_init_in(&lab, &r2, &["healthcheck"]);
    assert_eq!(rc, 0, "{out}");
    let table = status_table(&lab, &["--json", &a1.to_string()]);
    let rows: serde_json::Value = serde_json::from_str(&table).expect(&table);
    assert_eq!(
        rows.as_array().unwrap().len(),
        2,
        "the peer is found too: {table}"
    );
    // The table, resolved through DNS as in a node's container (docker exec).
    let bin = lab.binary();
    let out = r1.exec_in(
        &[bin.to_str().unwrap(), "status"],
        &[("DB_SERVICE_NAME", lab.service.as_str())],
    );
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!("galera-init status, two nodes:\n{table}");
    assert_eq!(
        table.matches("Master, Synced, Running").count(),
        1,
        "{table}"
    );
    assert_eq!(
        table.matches("Slave, Synced, Running").count(),
        1,
        "{table}"
    );

    // Drain: from the stop signal on, /health and /master answer 503 while the server is
    // still up for DRAIN_DELAY.
    let writer = if code(a1, "/master") == 200 { &r1 } else { &r2 };
    let wa = writer.node.addr;
    writer.signal(Signal::SIGTERM);
    assert!(
        writer.wait_log("draining for", Duration::from_secs(5)),
        "{}",
        writer.log()
    );
    assert_eq!(code(wa, "/health"), 503);
    assert_eq!(code(wa, "/master"), 503);
    assert_eq!(code(wa, "/live"), 200, "a draining node is not unhealthy");
    let (_, st) = http(wa, "/state").unwrap();
    assert!(st.contains("\"draining\":true"), "{st}");
    let other = if wa == a1 { a2 } else { a1 };
    assert!(
        wait_until(Duration::from_secs(20), || code(other, "/master") == 200),
        "the other node becomes the writer"
    );
}

/// A node cut off from the others: not ready at once, healthy (it may heal) until
/// NON_PRIMARY_GRACE has passed with no peer answering, then unhealthy; back to healthy
/// and ready once the network returns.
#[test]
fn a_cut_off_node_is_unhealthy_after_the_grace() {
    let mut lab = Lab::new("cutsvc");
    let env = with(&env(&lab), &[("NON_PRIMARY_GRACE", "15")]);
    let (nodes, running, _) = cold_start_with(&mut lab, &env);
    let addrs: Vec<Ipv4Addr> = nodes.iter().map(|n| n.addr).collect();
    let r3 = &running[2];
    nodes[2].link_down();
    assert!(
        wait_until(Duration::from_secs(30), || {
            galera_init_in(&lab, r3, &["healthcheck", "--ready"]).0 == 1
        }),
        "a cut-off node is not ready"
    );
    let (rc, out) = galera_init_in(&lab, r3, &["healthcheck"]);
    assert_eq!(rc, 0, "within the grace: {out}");
    assert!(
        wait_until(Duration::from_secs(60), || {
            galera_init_in(&lab, r3, &["healthcheck"]).0 == 1
        }),
        "unhealthy after the grace"
    );
    let (_, out) = galera_init_in(&lab, r3, &["healthcheck"]);
    assert!(out.contains("cut off"), "{out}");
    // The two others go on with one writer.
    let writers = || {
        addrs[..2]
            .iter()
            .filter(|a| code(**a, "/master") == 200)
            .count()
    };
    assert!(wait_until(Duration::from_secs(20), || writers() == 1));
    nodes[2].link_up();
    assert!(
        wait_until(FORM, || {
            galera_init_in(&lab, r3, &["healthcheck", "--ready"]).0 == 0
        }),
        "ready again once it is back:\n{}",
        r3.log()
    );
    assert_eq!(galera_init_in(&lab, r3, &["healthcheck"]).0, 0);
    assert_eq!(
        addrs.iter().filter(|a| code(**a, "/master") == 200).count(),
        1
    );
}
