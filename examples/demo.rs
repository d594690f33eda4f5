//! A local demo node: galera-init as PID 1 of a mini container in the namespace lab, with
//! the seed's environment from the README. Run it through `scripts/demo.sh` (as root).

#[path = "../tests/integration/lab.rs"]
mod lab;

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use mysql::prelude::Queryable;

const USER: &str = "mysqldbuser";
const PASS: &str = "mysqldbpass";

fn main() {
    let mut lab = lab::Lab::with_id(250, "mysqldbcluster");
    let n1 = lab.node(1);
    lab.set_dns(&[n1.addr]);
    let env = [
        ("DB_SERVICE_NAME", "mysqldbcluster"),
        ("MYSQL_ROOT_PASSWORD", "rootpass"),
        ("MYSQL_DATABASE", "mytestdb"),
        ("MYSQL_USER", USER),
        ("MYSQL_PASSWORD", PASS),
    ];
    println!("starting node1 ({}) with galera-init as PID 1…", n1.addr);
    let t0 = Instant::now();
    let mut node = n1.start(&env, &[]);
    if !lab::wait_synced(n1.addr, USER, PASS, 1, Duration::from_secs(120)) {
        eprintln!("the node did not come up; its log:\n{}", node.log());
        std::process::exit(1);
    }
    println!("node1 is up after {:.1}s:", t0.elapsed().as_secs_f32());
    let mut conn = lab::connect(n1.addr, USER, PASS).expect("connect");
    let rows: Vec<(String, String)> = conn
        .query(
            "SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_cluster_status', \
             'wsrep_cluster_size', 'wsrep_local_state_comment', 'wsrep_ready')",
        )
        .unwrap();
    for (k, v) in rows {
        println!("  {k:<28} {v}");
    }
    let version: Option<String> = conn.query_first("SELECT VERSION()").unwrap();
    println!("  {:<28} {}", "version", version.unwrap_or_default());
    drop(conn);
    println!(
        "connect: mariadb -h {} -u {USER} -p{PASS} mytestdb\nlog: {}",
        n1.addr,
        node.log_path.display()
    );
    if std::io::stdin().is_terminal() {
        println!("press Enter to stop the demo");
        let _ = std::io::stdin().read_line(&mut String::new());
    }
    node.signal(nix::sys::signal::Signal::SIGTERM);
    let code = node.wait_exit(Duration::from_secs(120));
    println!("stopped: galera-init exited with {code:?}");
}
