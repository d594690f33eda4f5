//! Bad configuration: one clear line naming the variable, a non-zero exit, and the datadir
//! untouched.

use std::fs;
use std::time::Duration;

use crate::lab::Lab;

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
        let mut node = n1.start(&env, &[]);
        let code = node.wait_exit(Duration::from_secs(30));
        let log = node.log();
        assert_eq!(code, Some(1), "{want}: {log}");
        let lines: Vec<&str> = log.lines().filter(|l| l.contains("ERROR")).collect();
        assert_eq!(lines.len(), 1, "one error line for {want}: {log}");
        assert!(lines[0].contains(want), "{want:?} not in {log}");
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
}
