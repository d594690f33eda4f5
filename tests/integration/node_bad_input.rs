//! Bad configuration: one clear line naming the variable, a non-zero exit, and the datadir
//! untouched.

use std::fs;
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::kit::{PASS, USER, grastate_uuid};
use crate::lab::{Lab, wait_synced};

#[test]
fn each_bad_input_is_one_clear_line_and_touches_nothing() {
    let mut lab = Lab::new("badsvc");
    let n1 = lab.node(1);
    lab.set_dns(&[n1.addr]);
    // An existing datadir with content that must survive every failed start.
    fs::write(
        n1.data_dir().join("grastate.dat"),
        "# keep me\nuuid: 9acf4d34-acdb-11e6-bcc3-d3e36276629f\nseqno: 7\nsafe_to_bootstrap: 0\n",
    )
    .unwrap();
    fs::create_dir(n1.data_dir().join("mysql")).unwrap();
    let before = n1.data_entries();
    let grastate = fs::read_to_string(n1.data_dir().join("grastate.dat")).unwrap();
    let secret = lab.dir.join("pw");
    fs::write(&secret, "x").unwrap();
    let secret = secret.display().to_string();
    let lab_dir = lab.dir.display().to_string();

    let svc = ("DB_SERVICE_NAME", "badsvc");
    let root = ("MYSQL_ROOT_PASSWORD", "pw");
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![root], "DB_SERVICE_NAME is not set"),
        (vec![svc], "MYSQL_ROOT_PASSWORD is not set"),
        (
            vec![svc, root, ("MYSQL_ROOT_PASSWORD_FILE", &secret)],
            "both MYSQL_ROOT_PASSWORD and MYSQL_ROOT_PASSWORD_FILE",
        ),
        (
            vec![svc, ("MYSQL_ROOT_PASSWORD_FILE", "/run/secrets/missing")],
            "MYSQL_ROOT_PASSWORD_FILE names /run/secrets/missing",
        ),
        (
            vec![svc, ("MYSQL_ROOT_PASSWORD_FILE", lab_dir.as_str())],
            "which cannot be read",
        ),
        (
            vec![svc, root, ("MYSQL_DATABASE", "my`db")],
            "MYSQL_DATABASE must be",
        ),
        (
            vec![("DB_SERVICE_NAME", "bad_name!"), root],
            "DB_SERVICE_NAME is not a valid DNS name",
        ),
        (
            vec![svc, root, ("CLUSTER_SIZE", "-3")],
            "CLUSTER_SIZE must be",
        ),
        (
            vec![svc, root, ("CLUSTER_KEY", "short")],
            "CLUSTER_KEY must be at least 16 characters",
        ),
        (
            vec![svc, root, ("MYSQL_USER", "app")],
            "MYSQL_USER is set but MYSQL_PASSWORD is not",
        ),
        (
            vec![svc, root, ("MYSQL_USER", "root"), ("MYSQL_PASSWORD", "x")],
            "MYSQL_USER must not be 'root'",
        ),
        (
            vec![svc, root, ("MYSQL_ALLOW_EMPTY_PASSWORD", "yes")],
            "MYSQL_ROOT_PASSWORD conflicts",
        ),
        (
            vec![svc, root, ("MARIADB_RANDOM_ROOT_PASSWORD", "perhaps")],
            "MARIADB_RANDOM_ROOT_PASSWORD must be yes or no",
        ),
        (
            vec![svc, root, ("CLUSTER_NAME", "bad name!")],
            "CLUSTER_NAME",
        ),
        (
            vec![svc, root, ("NODE_ADDRESS", "here")],
            "NODE_ADDRESS is not an IP address",
        ),
        (
            vec![svc, root, ("SST_METHOD", "mysqldump")],
            "SST_METHOD must be",
        ),
        (
            vec![svc, root, ("DISCOVERY_TIMEOUT", "-1")],
            "DISCOVERY_TIMEOUT must be",
        ),
        (
            vec![svc, root, ("CLUSTER_SIZE", "0")],
            "CLUSTER_SIZE must be",
        ),
        (vec![svc, root, ("HTTP_PORT", "http")], "HTTP_PORT must be"),
    ];
    for (env, want) in cases {
        assert_one_error(&mut n1.start(&env, &[]), want);
        assert_eq!(n1.data_entries(), before, "datadir changed by {want}");
        assert_eq!(
            fs::read_to_string(n1.data_dir().join("grastate.dat")).unwrap(),
            grastate
        );
    }
    assert!(
        !n1.etc_dir()
            .join("mariadb.conf.d/99-galera-init.cnf")
            .exists()
    );

    // The state port is taken: one line naming HTTP_PORT.
    let mut holder = std::process::Command::new("ip")
        .args(["netns", "exec", &n1.ns, "python3", "-c"])
        .arg(
            "import socket,time\ns=socket.socket()\ns.bind(('0.0.0.0',9200))\ns.listen()\n\
             print('bound',flush=True)\ntime.sleep(120)",
        )
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut bound = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.stdout.as_mut().unwrap()),
        &mut bound,
    )
    .unwrap();
    assert_eq!(bound.trim(), "bound");
    let mut node = n1.start(&[svc, root], &[]);
    node.wait_exit(Duration::from_secs(30));
    let _ = holder.kill();
    let _ = holder.wait();
    assert_one_error(
        &mut node,
        "cannot serve the node state on port 9200 (HTTP_PORT)",
    );
    assert_eq!(n1.data_entries(), before);

    // A datadir that cannot be written (immutable, as a read-only mount would be), and
    // one on a full file system: one line each, nothing changed.
    let data = n1.data_dir().display().to_string();
    crate::lab::sh(&["chattr", "+i", &data]);
    let mut node = n1.start(&[svc, root], &[]);
    let immutable = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        assert_one_error(&mut node, "datadir /var/lib/mysql is not writable")
    }));
    crate::lab::sh(&["chattr", "-i", &data]);
    immutable.unwrap();
    assert_eq!(n1.data_entries(), before);

    let n2 = lab.node(2);
    lab.set_dns(&[n2.addr]);
    let small = n2.data_dir().display().to_string();
    crate::lab::sh(&["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", &small]);
    fs::create_dir(n2.data_dir().join("mysql")).unwrap();
    fs::write(n2.data_dir().join("grastate.dat"), &grastate).unwrap();
    // Fill it: the write fails once the file system is full.
    let _ = fs::write(n2.data_dir().join("filler"), vec![0u8; 8 << 20]);
    let full_before = n2.data_entries();
    let mut node = n2.start(&[svc, root], &[]);
    let full = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        assert_one_error(&mut node, "MiB free, less than the 16 MiB a start needs");
        assert_eq!(n2.data_entries(), full_before);
    }));
    crate::lab::sh(&["umount", &small]);
    full.unwrap();
    lab.set_dns(&[n1.addr]);

    // mariadbd or the Galera provider missing from the image: one line naming the package.
    for (extra, want) in [
        (
            ("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "mariadbd is not installed (not found in PATH=/usr/local/bin:/usr/bin:/bin): this \
             image needs Debian's mariadb-server package",
        ),
        (
            ("LAB_HIDE_DIR", "/usr/lib/galera"),
            "the Galera provider is not installed (no /usr/lib/galera/libgalera_smm.so): this \
             image needs Debian's galera-4 package",
        ),
    ] {
        let mut node = n1.start(&[svc, root, extra], &[]);
        assert_one_error(&mut node, want);
        assert_eq!(n1.data_entries(), before);
    }

    // A grastate.dat that cannot be parsed, where InnoDB cannot tell the position either
    // (no ibdata1): refused, the file and the datadir left as they are.
    let env = [svc, root];
    for (text, want) in [
        ("", "grastate.dat cannot be parsed (no uuid line)"),
        (
            "# GALERA saved state\nversion: 2.1\nuuid:    9acf4d34-acdb-11e6-bcc3-d3e36276629f\nseqno:   1",
            "grastate.dat cannot be parsed (the file is cut short",
        ),
        ("uuid: garbage\nseqno: 3\n", "is not a UUID"),
    ] {
        fs::write(n1.data_dir().join("grastate.dat"), text).unwrap();
        assert_one_error(&mut n1.start(&env, &[]), want);
        assert_eq!(n1.data_entries(), before, "datadir changed by {want}");
        assert_eq!(
            fs::read_to_string(n1.data_dir().join("grastate.dat")).unwrap(),
            text
        );
    }
}

/// Waits for the node to exit and asserts exit code 1 and exactly one `ERROR` line, which
/// contains `want`.
fn assert_one_error(node: &mut crate::lab::Running, want: &str) {
    let code = node.wait_exit(Duration::from_secs(30));
    let log = node.log();
    assert_eq!(code, Some(1), "{want}: {log}");
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("ERROR")).collect();
    assert_eq!(lines.len(), 1, "one error line for {want}: {log}");
    assert!(lines[0].contains(want), "{want:?} not in {log}");
}

/// A datadir's entries without `ddl_recovery.log`, which any run of mariadbd (even
/// `--wsrep-recover`) may create or remove.
fn entries_but_ddl_log(entries: Vec<String>) -> Vec<String> {
    entries
        .into_iter()
        .filter(|f| f != "ddl_recovery.log")
        .collect()
}

/// A position that cannot be recovered (mariadbd --wsrep-recover fails) stops the node with
/// one line saying why, before anything else runs: starting without the position would let
/// Galera overwrite InnoDB's record of the cluster's history. Once the cause is gone, the
/// next start recovers the position.
#[test]
fn a_recovery_that_fails_stops_the_node_and_keeps_its_datadir() {
    let mut lab = Lab::new("recsvc");
    let n1 = lab.node(1);
    lab.set_dns(&[n1.addr]);
    let env = [
        ("DB_SERVICE_NAME", "recsvc"),
        ("MYSQL_ROOT_PASSWORD", "pw"),
        ("MYSQL_USER", USER),
        ("MYSQL_PASSWORD", PASS),
    ];
    let mut node = n1.start(&env, &[]);
    assert!(
        node.wait_log("started mariadbd", Duration::from_secs(60))
            && wait_synced(n1.addr, USER, PASS, 1, Duration::from_secs(60)),
        "{}",
        node.log()
    );
    let uuid = grastate_uuid(&n1);
    node.signal(Signal::SIGKILL);
    assert!(node.wait_exit(Duration::from_secs(30)).is_some());
    let before = n1.data_entries();
    let state = |f: &str| fs::read(n1.data_dir().join(f)).unwrap();
    let (grastate, record) = (state("grastate.dat"), state("galera-init.json"));
    // A setting InnoDB refuses for this datadir makes every run of mariadbd fail.
    let typo = n1.etc_dir().join("conf.d/zz-typo.cnf");
    fs::write(&typo, "[mysqld]\ninnodb_page_size = 4k\n").unwrap();
    let mut node = n1.start(&env, &[]);
    let code = node.wait_exit(Duration::from_secs(60));
    let log = node.log();
    assert_eq!(code, Some(1), "{log}");
    let last = log.lines().last().unwrap_or_default();
    assert!(
        last.contains("ERROR")
            && last.contains("mariadbd --wsrep-recover failed (exit code 1)")
            && last.contains("the datadir is left as it is"),
        "{log}"
    );
    assert!(!log.contains("started mariadbd"), "{log}");
    // Nothing was initialised or replaced (the failed mariadbd run may have processed its
    // own DDL recovery log).
    assert_eq!(
        entries_but_ddl_log(n1.data_entries()),
        entries_but_ddl_log(before),
        "datadir entries"
    );
    assert_eq!(state("grastate.dat"), grastate);
    assert_eq!(state("galera-init.json"), record);

    fs::remove_file(&typo).unwrap();
    let node = n1.start(&env, &[]);
    assert!(
        node.wait_log(
            &format!("recovered position {uuid}:"),
            Duration::from_secs(60)
        ),
        "{}",
        node.log()
    );
}

/// A grastate.dat emptied by a power loss, on a datadir whose InnoDB holds no Galera
/// position (it was made by `mariadb-install-db` and never joined a cluster): there is
/// nothing to recover it from, so the node refuses with one line naming the file, and
/// neither the file nor the datadir's entries change.
#[test]
fn a_damaged_grastate_with_no_position_in_innodb_is_refused() {
    let mut lab = Lab::new("nopossvc");
    let n1 = lab.node(1);
    lab.set_dns(&[n1.addr]);
    let data = n1.data_dir().display().to_string();
    crate::lab::sh(&["chown", "mysql:mysql", &data]);
    crate::lab::sh(&[
        "mariadb-install-db",
        &format!("--datadir={data}"),
        "--user=mysql",
        "--auth-root-authentication-method=normal",
        "--skip-test-db",
    ]);
    assert!(
        n1.data_dir().join("ibdata1").is_file(),
        "install-db made no InnoDB"
    );
    fs::write(n1.data_dir().join("grastate.dat"), "").unwrap();
    let before = entries_but_ddl_log(n1.data_entries());
    let env = [
        ("DB_SERVICE_NAME", "nopossvc"),
        ("MYSQL_ROOT_PASSWORD", "pw"),
    ];
    let mut node = n1.start(&env, &[]);
    assert_one_error(
        &mut node,
        "grastate.dat cannot be parsed (no uuid line) and InnoDB holds no position either",
    );
    // InnoDB was asked, and answered no position.
    let log = node.log();
    assert!(
        log.contains("recovering it with mariadbd --wsrep-recover"),
        "{log}"
    );
    assert!(!log.contains("started mariadbd"), "{log}");
    assert_eq!(entries_but_ddl_log(n1.data_entries()), before);
    assert_eq!(fs::read(n1.data_dir().join("grastate.dat")).unwrap(), b"");
}
