//! The namespace lab: each node is a mini container on this machine.
//!
//! A node has its own network namespace (a veth on the lab's bridge), its own mount
//! namespace with private copies of the image's paths (`/var/lib/mysql` as its volume,
//! `/etc/mysql`, `/docker-entrypoint-initdb.d`, tmpfs `/run` and `/tmp`), its own hostname
//! and its own PID namespace with galera-init as PID 1. A real dnsmasq on the bridge answers
//! `tasks.<service>` from a hosts file the test rewrites, and each namespace's
//! `/etc/netns/NAME/resolv.conf` points at it.
//!
//! Everything a lab creates is removed when it is dropped. Set `GALERA_LAB_KEEP=1` to keep
//! the node folders (logs, datadirs) for a post-mortem.

#![allow(dead_code)]

use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The galera-init binary under test: `GALERA_INIT_BIN`, else the one cargo built for the
/// integration tests.
pub fn bin() -> PathBuf {
    std::env::var_os("GALERA_INIT_BIN")
        .map(PathBuf::from)
        .or(option_env!("CARGO_BIN_EXE_galera-init").map(PathBuf::from))
        .expect("set GALERA_INIT_BIN to the galera-init binary")
}

/// Polls `cond` every 100 ms until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs a command and panics with its output if it fails.
pub fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn quiet(args: &[&str]) {
    let _ = Command::new(args[0])
        .args(&args[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Adds (`-I`) or removes (`-D`) the iptables rule that lets frames cross `bridge`.
fn forward_rule(op: &str, bridge: &str) {
    quiet(&[
        "iptables", op, "FORWARD", "-i", bridge, "-o", bridge, "-j", "ACCEPT",
    ]);
}

static NEXT_ID: AtomicU32 = AtomicU32::new(0);

/// Checks that the lab can run here, with a message that says what is missing.
pub fn require_lab() {
    assert!(
        nix::unistd::Uid::effective().is_root(),
        "the namespace lab needs root (run the suite with scripts/test.sh as root)"
    );
    for tool in [
        "mariadbd",
        "dnsmasq",
        "ip",
        "unshare",
        "nsenter",
        "mariadb-install-db",
    ] {
        let found = std::env::var("PATH")
            .unwrap_or_default()
            .split(':')
            .chain(["/usr/sbin", "/sbin"])
            .any(|d| Path::new(d).join(tool).exists());
        assert!(
            found,
            "{tool} is missing: run scripts/install-deps.sh as root"
        );
    }
}

/// One isolated network (bridge + DNS server) and its nodes.
pub struct Lab {
    /// Unique among the labs of this machine: names the bridge and the subnet 10.213.<id>.0/24.
    pub id: u32,
    /// The Swarm service name the nodes use.
    pub service: String,
    /// Where node folders, logs and the DNS hosts file live.
    pub dir: PathBuf,
    bridge: String,
    dns: Option<Child>,
    namespaces: Vec<String>,
}

impl Lab {
    /// Creates the bridge and starts dnsmasq on it, with no records yet.
    pub fn new(service: &str) -> Lab {
        require_lab();
        let n = NEXT_ID.fetch_add(1, Ordering::SeqCst);
        let id = (std::process::id() % 20) * 10 + n % 10;
        Self::with_id(id, service)
    }

    /// A lab with a fixed id (the demo uses one outside the tests' range).
    pub fn with_id(id: u32, service: &str) -> Lab {
        let bridge = format!("gib{id}");
        // Not under /tmp: the nodes mount their own tmpfs there.
        let dir = PathBuf::from(format!("/var/tmp/galera-lab-{id}"));
        // Leftovers of a run that was killed before it could clean up.
        quiet(&["ip", "link", "del", &bridge]);
        forward_rule("-D", &bridge);
        for k in 0..10 {
            quiet(&["ip", "netns", "del", &format!("gi{id}n{k}")]);
        }
        if let Ok(pid) = fs::read_to_string(dir.join("dnsmasq.pid")) {
            quiet(&["kill", pid.trim()]);
        }
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        // A private copy of the binary: the one under test may live under /tmp, which the
        // nodes hide behind their own tmpfs.
        fs::copy(bin(), dir.join("galera-init")).expect("copy the galera-init binary");
        sh(&["ip", "link", "add", &bridge, "type", "bridge"]);
        sh(&[
            "ip",
            "addr",
            "add",
            &format!("10.213.{id}.1/24"),
            "dev",
            &bridge,
        ]);
        sh(&["ip", "link", "set", &bridge, "up"]);
        // Docker sets the FORWARD policy to DROP and bridged frames go through iptables
        // (br_netfilter): let the nodes talk to each other across the lab's bridge.
        forward_rule("-I", &bridge);
        let mut lab = Lab {
            id,
            service: service.to_string(),
            dir,
            bridge,
            dns: None,
            namespaces: Vec::new(),
        };
        lab.set_dns(&[]);
        lab.start_dns();
        lab
    }

    /// The galera-init binary the nodes run (a path visible inside them too).
    pub fn binary(&self) -> PathBuf {
        self.dir.join("galera-init")
    }

    /// The DNS server's address (the bridge's).
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 213, self.id as u8, 1)
    }

    /// The address node `k` gets.
    pub fn addr(&self, k: u32) -> Ipv4Addr {
        Ipv4Addr::new(10, 213, self.id as u8, 10 + k as u8)
    }

    /// The DNS name listing the nodes.
    pub fn tasks_name(&self) -> String {
        format!("tasks.{}", self.service)
    }

    fn start_dns(&mut self) {
        let child = Command::new("dnsmasq")
            .args([
                "--keep-in-foreground",
                "--no-resolv",
                "--no-hosts",
                "--bind-interfaces",
                "--port=53",
                "--no-negcache",
                "--local=/#/",
                "--user=root",
                "--local-ttl=0",
            ])
            .arg(format!("--listen-address={}", self.gateway()))
            .arg(format!("--addn-hosts={}", self.dir.join("hosts").display()))
            .arg(format!(
                "--pid-file={}",
                self.dir.join("dnsmasq.pid").display()
            ))
            .arg(format!(
                "--log-facility={}",
                self.dir.join("dns.log").display()
            ))
            .stdin(Stdio::null())
            .spawn()
            .expect("start dnsmasq");
        self.dns = Some(child);
        let pidfile = self.dir.join("dnsmasq.pid");
        assert!(
            wait_until(Duration::from_secs(10), || pidfile.exists()),
            "dnsmasq did not start"
        );
    }

    /// Makes `tasks.<service>` answer exactly `addrs` (none: NXDOMAIN).
    pub fn set_dns(&self, addrs: &[Ipv4Addr]) {
        let text: String = addrs
            .iter()
            .map(|a| format!("{a} {}\n", self.tasks_name()))
            .collect();
        let tmp = self.dir.join("hosts.tmp");
        fs::write(&tmp, text).unwrap();
        fs::rename(&tmp, self.dir.join("hosts")).unwrap();
        if let Some(dns) = &self.dns {
            sh(&["kill", "-HUP", &dns.id().to_string()]);
            // Confirm that dnsmasq serves the new answer before a node may ask.
            use galera_init::discovery::Resolve;
            let mut resolver =
                galera_init::discovery::dns::SystemResolver::with_server(self.gateway().into())
                    .unwrap();
            let mut want: Vec<std::net::IpAddr> = addrs.iter().map(|a| (*a).into()).collect();
            want.sort();
            let ok = wait_until(Duration::from_secs(10), || {
                let mut got = resolver.resolve(&self.tasks_name()).unwrap_or_default();
                got.sort();
                got == want
            });
            assert!(ok, "dnsmasq does not serve {want:?}");
        }
    }

    /// Node `k` (1-based): creates its namespace, veth and folders the first time.
    /// Its folders persist across restarts, like a Swarm volume.
    pub fn node(&mut self, k: u32) -> Node {
        let ns = format!("gi{}n{k}", self.id);
        let veth = format!("giv{}n{k}", self.id);
        let dir = self.dir.join(format!("node{k}"));
        if !self.namespaces.contains(&ns) {
            sh(&["ip", "netns", "add", &ns]);
            sh(&[
                "ip", "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
            ]);
            sh(&["ip", "link", "set", &veth, "master", &self.bridge, "up"]);
            let cidr = format!("{}/24", self.addr(k));
            sh(&["ip", "-n", &ns, "addr", "add", &cidr, "dev", "eth0"]);
            sh(&["ip", "-n", &ns, "link", "set", "eth0", "up"]);
            sh(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
            let etc = PathBuf::from("/etc/netns").join(&ns);
            fs::create_dir_all(&etc).unwrap();
            fs::write(
                etc.join("resolv.conf"),
                format!("nameserver {}\n", self.gateway()),
            )
            .unwrap();
            for sub in ["data", "initdb", "etc"] {
                fs::create_dir_all(dir.join(sub)).unwrap();
            }
            sh(&[
                "cp",
                "-a",
                "/etc/mysql/.",
                &dir.join("etc").to_string_lossy(),
            ]);
            self.namespaces.push(ns.clone());
        }
        Node {
            k,
            ns,
            veth,
            addr: self.addr(k),
            dir,
            hostname: format!("node{k}"),
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(mut dns) = self.dns.take() {
            let _ = dns.kill();
            let _ = dns.wait();
        }
        for ns in &self.namespaces {
            quiet(&["ip", "netns", "del", ns]);
            let _ = fs::remove_dir_all(PathBuf::from("/etc/netns").join(ns));
        }
        quiet(&["ip", "link", "del", &self.bridge]);
        forward_rule("-D", &self.bridge);
        if std::env::var_os("GALERA_LAB_KEEP").is_none() {
            let _ = fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("lab kept in {}", self.dir.display());
        }
    }
}

/// A node's identity and folders; [`Node::start`] runs galera-init in it.
#[derive(Debug, Clone)]
pub struct Node {
    /// Index in the lab.
    pub k: u32,
    /// Network namespace name.
    pub ns: String,
    /// Host side of its veth.
    pub veth: String,
    /// Its address on the bridge.
    pub addr: Ipv4Addr,
    /// Its folders: data/ (the volume), etc/ (/etc/mysql), initdb/, and logs.
    pub dir: PathBuf,
    /// Its hostname.
    pub hostname: String,
}

/// The mount set-up run inside the node's fresh namespaces before galera-init is exec'd.
/// Like a container started again, the node keeps its volume and loses what was written
/// into its image's files.
const NODE_SCRIPT: &str = r#"set -e
mkdir -p /docker-entrypoint-initdb.d
# A restarted task is a new container: what galera-init wrote into /etc/mysql is gone.
rm -f "$LAB_DIR/etc/mariadb.conf.d/99-galera-init.cnf"
mount --bind "$LAB_DIR/data" /var/lib/mysql
mount --bind "$LAB_DIR/etc" /etc/mysql
mount --bind "$LAB_DIR/initdb" /docker-entrypoint-initdb.d
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=755 tmpfs /run
hostname "$LAB_HOSTNAME"
# A test may hide a folder of the image (an image built without a package).
if [ -n "${LAB_HIDE_DIR:-}" ]; then mount -t tmpfs tmpfs "$LAB_HIDE_DIR"; fi
bin="$LAB_BIN"
unset LAB_DIR LAB_HOSTNAME LAB_BIN LAB_HIDE_DIR
exec "$bin" "$@"
"#;

impl Node {
    /// The node's volume.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }
    /// The node's `/etc/mysql`.
    pub fn etc_dir(&self) -> PathBuf {
        self.dir.join("etc")
    }
    /// The node's `/docker-entrypoint-initdb.d`.
    pub fn initdb_dir(&self) -> PathBuf {
        self.dir.join("initdb")
    }

    /// Starts galera-init as PID 1 of the node with exactly `env` (plus PATH) and `args`.
    /// Its output goes to `log-<n>.txt` in the node folder.
    pub fn start(&self, env: &[(&str, &str)], args: &[&str]) -> Running {
        let n = (0..)
            .find(|i| !self.dir.join(format!("log-{i}.txt")).exists())
            .unwrap();
        let log_path = self.dir.join(format!("log-{n}.txt"));
        let log = fs::File::create(&log_path).unwrap();
        let mut cmd = Command::new("ip");
        cmd.args([
            "netns", "exec", &self.ns, "unshare", "--mount", "--uts", "--pid", "--fork",
        ])
        .args([
            "--mount-proc",
            "--propagation",
            "private",
            "sh",
            "-c",
            NODE_SCRIPT,
            "sh",
        ])
        .args(args)
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("LAB_DIR", &self.dir)
        .env("LAB_HOSTNAME", &self.hostname)
        .env("LAB_BIN", self.dir.parent().unwrap().join("galera-init"))
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
        let mut child = cmd.spawn().expect("start node");
        let unshare = child.id() as i32;
        let mut pid1 = 0;
        let mut exit = None;
        let started = wait_until(Duration::from_secs(10), || {
            pid1 = fs::read_to_string(format!("/proc/{unshare}/task/{unshare}/children"))
                .ok()
                .and_then(|s| s.split_whitespace().next().and_then(|p| p.parse().ok()))
                .unwrap_or(0);
            if pid1 == 0 {
                // galera-init may already be done (a configuration error).
                if let Ok(Some(status)) = child.try_wait() {
                    exit = status.code();
                }
            }
            pid1 != 0 || exit.is_some()
        });
        assert!(started, "node {} did not start", self.k);
        Running {
            node: self.clone(),
            child,
            pid1,
            log_path,
            exit,
        }
    }

    /// Gives the node a new address (as a rescheduled Swarm task gets): node `k`'s slot.
    pub fn readdress(&mut self, lab: &Lab, k: u32) {
        let cidr = format!("{}/24", lab.addr(k));
        sh(&["ip", "-n", &self.ns, "addr", "flush", "dev", "eth0"]);
        sh(&["ip", "-n", &self.ns, "addr", "add", &cidr, "dev", "eth0"]);
        self.addr = lab.addr(k);
    }

    /// Cuts the node off the network.
    pub fn link_down(&self) {
        sh(&["ip", "link", "set", &self.veth, "down"]);
    }
    /// Reconnects the node.
    pub fn link_up(&self) {
        sh(&["ip", "link", "set", &self.veth, "up"]);
    }

    /// Entries of the node's datadir, sorted.
    pub fn data_entries(&self) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(self.data_dir())
            .map(|d| {
                d.filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}

/// A running galera-init.
pub struct Running {
    /// The node it runs in.
    pub node: Node,
    child: Child,
    /// galera-init's PID as seen from the host (PID 1 inside the node).
    pub pid1: i32,
    /// Its combined stdout and stderr.
    pub log_path: PathBuf,
    exit: Option<i32>,
}

impl Running {
    /// Sends a signal to PID 1 from outside, as `docker kill -s` does.
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        assert!(self.pid1 > 0, "galera-init is not running");
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid1), sig);
    }

    /// The log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Waits until the log contains `needle`.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        wait_until(timeout, || self.log().contains(needle))
    }

    /// Waits for galera-init to exit and returns its exit code (unshare passes it on).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        if self.exit.is_some() {
            return self.exit;
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                use std::os::unix::process::ExitStatusExt;
                self.exit = status.code().or(status.signal().map(|s| 128 + s));
                return self.exit;
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// PIDs (host view) of every process in the node.
    pub fn processes(&self) -> Vec<i32> {
        let mut out = vec![self.pid1];
        let mut i = 0;
        while i < out.len() {
            let p = out[i];
            if let Ok(s) = fs::read_to_string(format!("/proc/{p}/task/{p}/children")) {
                out.extend(s.split_whitespace().filter_map(|c| c.parse::<i32>().ok()));
            }
            i += 1;
        }
        out
    }

    /// The host PID of the node's mariadbd, if it runs.
    pub fn mariadbd_pid(&self) -> Option<i32> {
        self.processes().into_iter().find(|p| {
            fs::read_to_string(format!("/proc/{p}/comm"))
                .map(|c| c.trim() == "mariadbd")
                .unwrap_or(false)
        })
    }

    /// Runs a command inside the node's mount namespace (for its unix socket).
    pub fn exec_in(&self, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
        Command::new("nsenter")
            .arg("-t")
            .arg(self.pid1.to_string())
            .args(["-m", "-n", "--"])
            .args(args)
            .envs(env.iter().copied())
            .output()
            .unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.exit.is_none() && self.pid1 > 0 {
            self.signal(nix::sys::signal::Signal::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

/// A TCP connection to a node's mariadbd.
pub fn connect(addr: Ipv4Addr, user: &str, pass: &str) -> mysql::Result<mysql::Conn> {
    let opts = mysql::OptsBuilder::new()
        .ip_or_hostname(Some(addr.to_string()))
        .tcp_port(3306)
        .user(Some(user))
        .pass(Some(pass))
        .prefer_socket(false)
        .tcp_connect_timeout(Some(Duration::from_secs(3)))
        .read_timeout(Some(Duration::from_secs(10)))
        .write_timeout(Some(Duration::from_secs(10)));
    mysql::Conn::new(opts)
}

/// A status variable read over TCP, or `None` when the node cannot be reached.
pub fn status_var(addr: Ipv4Addr, user: &str, pass: &str, name: &str) -> Option<String> {
    use mysql::prelude::Queryable;
    let mut conn = connect(addr, user, pass).ok()?;
    let row: Option<(String, String)> = conn
        .query_first(format!("SHOW GLOBAL STATUS LIKE '{name}'"))
        .ok()?;
    row.map(|(_, v)| v)
}

/// Waits until the node is Synced in a Primary component of `size` nodes.
pub fn wait_synced(addr: Ipv4Addr, user: &str, pass: &str, size: u32, timeout: Duration) -> bool {
    wait_until(timeout, || {
        status_var(addr, user, pass, "wsrep_local_state_comment").as_deref() == Some("Synced")
            && status_var(addr, user, pass, "wsrep_cluster_status").as_deref() == Some("Primary")
            && status_var(addr, user, pass, "wsrep_cluster_size") == Some(size.to_string())
    })
}

/// HAProxy from examples/proxy/haproxy.cfg in front of a lab's nodes (the lab's DNS server
/// and service name), its write and read ports on loopback; stopped on drop. Its log is
/// `haproxy.log` in the lab folder.
pub struct Haproxy(Child);

impl Haproxy {
    /// Starts it with the write port on `write` and the read port on `read`.
    pub fn start(lab: &Lab, write: u16, read: u16) -> Haproxy {
        let example = fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/proxy/haproxy.cfg"),
        )
        .unwrap();
        let cfg = example
            .replace("127.0.0.11:53", &format!("{}:53", lab.gateway()))
            .replace("tasks.mysqldbcluster", &lab.tasks_name())
            .replace("bind :3306", &format!("bind 127.0.0.1:{write}"))
            .replace("bind :3307", &format!("bind 127.0.0.1:{read}"));
        assert!(cfg.contains(&lab.tasks_name()) && cfg.contains("GET /master"));
        let path = lab.dir.join("haproxy.cfg");
        fs::write(&path, cfg).unwrap();
        let log = fs::File::create(lab.dir.join("haproxy.log")).unwrap();
        let child = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start haproxy (scripts/install-deps.sh installs it)");
        Haproxy(child)
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
