//! A local demo cluster: three nodes, each galera-init as PID 1 of a mini container in the
//! namespace lab, with the environment of the README, started together. Run it through
//! `scripts/demo.sh` (as root).

#[path = "../tests/integration/lab.rs"]
mod lab;

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use mysql::prelude::Queryable;

const USER: &str = "mysqldbuser";
const PASS: &str = "mysqldbpass";

fn main() {
    let mut lab = lab::Lab::with_id(250, "mysqldbcluster");
    let nodes: Vec<lab::Node> = (1..=3).map(|k| lab.node(k)).collect();
    let addrs: Vec<_> = nodes.iter().map(|n| n.addr).collect();
    lab.set_dns(&addrs);
    let env = [
        ("DB_SERVICE_NAME", "mysqldbcluster"),
        ("MYSQL_ROOT_PASSWORD", "rootpass"),
        ("MYSQL_DATABASE", "mytestdb"),
        ("MYSQL_USER", USER),
        ("MYSQL_PASSWORD", PASS),
    ];
    println!("starting 3 nodes ({addrs:?}), galera-init as PID 1 of each…");
    let t0 = Instant::now();
    let mut running: Vec<lab::Running> = nodes.iter().map(|n| n.start(&env, &[])).collect();
    for (node, r) in nodes.iter().zip(&running) {
        if !lab::wait_synced(node.addr, USER, PASS, 3, Duration::from_secs(240)) {
            eprintln!("{} did not come up; its log:\n{}", node.hostname, r.log());
            std::process::exit(1);
        }
    }
    println!("cluster up after {:.1}s:", t0.elapsed().as_secs_f32());
    for node in &nodes {
        let mut conn = lab::connect(node.addr, USER, PASS).expect("connect");
        let rows: Vec<(String, String)> = conn
            .query(
                "SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_cluster_status', \
                 'wsrep_cluster_size', 'wsrep_local_state_comment')",
            )
            .unwrap();
        let line: Vec<String> = rows.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!("  {} {}: {}", node.hostname, node.addr, line.join(" "));
    }
    println!(
        "connect: mariadb -h {} -u {USER} -p{PASS} mytestdb\nstate:   curl http://{}:9200/state\nlogs:    {}",
        addrs[0],
        addrs[0],
        lab.dir.display()
    );
    if std::io::stdin().is_terminal() {
        println!("press Enter to stop the demo");
        let _ = std::io::stdin().read_line(&mut String::new());
    }
    for r in &running {
        r.signal(nix::sys::signal::Signal::SIGTERM);
    }
    for r in running.iter_mut() {
        let code = r.wait_exit(Duration::from_secs(120));
        println!(
            "stopped {}: galera-init exited with {code:?}",
            r.node.hostname
        );
    }
}
