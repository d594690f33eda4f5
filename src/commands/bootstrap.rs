//! `galera-init bootstrap`: the operator's override, run in any node's container.
//!
//! It creates the `force-bootstrap` file in the datadir. The node reads it at every round of
//! its election (and its monitor does, while mariadbd runs), so it acts without a restart:
//! the most advanced node present bootstraps without waiting for the missing ones, exactly
//! one of them, and every node that then bootstraps or joins removes its file. On a node
//! whose history an earlier override gave up, it is also the way to restart the cluster from
//! that history. The command then follows the node's `/state` for a while and prints what
//! the node decides.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::datadir::FORCE_BOOTSTRAP_FILE;
use crate::peer::client::HttpPeers;
use crate::state::NodeState;

/// Requests the override on the node whose datadir is `datadir` and whose state port on
/// loopback is `port`, and reports on `out` what it does within `wait`. Returns the exit
/// code: 0 once the override is requested, 1 when it cannot be.
pub fn run(datadir: &Path, port: u16, wait: Duration, out: &mut dyn Write) -> u8 {
    let file = datadir.join(FORCE_BOOTSTRAP_FILE);
    if let Err(e) = std::fs::write(&file, b"") {
        let _ = writeln!(
            out,
            "galera-init bootstrap: cannot write {} ({e}): run it in the node's container \
             (docker exec TASK galera-init bootstrap)",
            file.display()
        );
        return 1;
    }
    let _ = writeln!(
        out,
        "override requested ({}): the most advanced node present restarts the cluster \
         without waiting for the missing nodes",
        file.display()
    );
    let peers = HttpPeers::new(port, None, None);
    let local = std::net::IpAddr::from([127, 0, 0, 1]);
    let start = Instant::now();
    let mut last = None;
    loop {
        let state: Option<NodeState> = peers.fetch(local);
        let Some(state) = state else {
            if last.is_none() {
                let _ = writeln!(
                    out,
                    "no galera-init answers on 127.0.0.1:{port} (HTTP_PORT): the override \
                     applies when the node starts"
                );
                return 0;
            }
            break;
        };
        let decision = state.decision.clone().unwrap_or_default();
        if last.as_ref() != Some(&decision) {
            let _ = writeln!(out, "node {}: {decision}", state.label());
            last = Some(decision);
        }
        if !file.exists() {
            let _ = writeln!(out, "the override was used");
            return 0;
        }
        if start.elapsed() >= wait {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let _ = writeln!(
        out,
        "the override is pending on this node until it is used (remove {} to withdraw it)",
        file.display()
    );
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_writes_the_file_and_says_so_when_no_node_answers() {
        let dir = std::env::temp_dir().join(format!("gi-bootstrap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut out = Vec::new();
        // A port nothing listens on (bound then released).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        assert_eq!(run(&dir, port, Duration::ZERO, &mut out), 0);
        assert!(dir.join(FORCE_BOOTSTRAP_FILE).exists());
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("applies when the node starts"), "{text}");
        let mut out = Vec::new();
        assert_eq!(run(&dir.join("missing"), port, Duration::ZERO, &mut out), 1);
        assert!(String::from_utf8(out).unwrap().contains("cannot write"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
