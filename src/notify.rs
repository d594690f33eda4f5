//! Galera's state notifications: mariadbd runs `wsrep_notify_cmd` on every change of its
//! state or of the component's view, and galera-init makes that command itself
//! (`galera-init notify`), so its verdicts follow the server at once instead of at the
//! monitor's next half-second reading.
//!
//! The command only wakes the node's monitor: it sends one datagram to a unix socket that
//! the node listens on ([`listen`]), and the monitor then reads the server's status in quick
//! succession for a moment. It carries no state of its own (the reading is the truth), so
//! a lost or forged datagram costs at most a few extra readings. mariadbd waits for the
//! command, so it does nothing else: no logger, no signal set-up, exit 0 whatever happens
//! (a failing command only fills mariadbd's log).

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::Path;

use crate::health::peers::Nudge;

/// Where the node listens for notifications: on the container's own `/run`.
pub const SOCKET: &str = "/run/galera-init/notify";

/// What `galera-init notify` does: wakes the node's monitor. Galera's arguments
/// (`--status Synced --uuid … --primary yes --members … --index 0`) are not needed: the
/// monitor reads the status itself.
pub fn send(socket: &Path) {
    if let Ok(s) = UnixDatagram::unbound() {
        let _ = s.send_to(b"wake", socket);
    }
}

/// Listens on `socket` from a thread of its own; every datagram wakes `reading`. The socket
/// is writable by every local account (mariadbd runs the command as `mysql`): a datagram
/// only asks for a reading.
pub fn listen(socket: &Path, reading: Nudge) -> std::io::Result<()> {
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    }
    match std::fs::remove_file(socket) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let listener = UnixDatagram::bind(socket)?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o666))?;
    std::thread::Builder::new()
        .name("notify".into())
        .spawn(move || {
            let mut buf = [0u8; 64];
            while listener.recv(&mut buf).is_ok() {
                reading.wake();
            }
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_notification_wakes_the_monitor() {
        let dir = std::env::temp_dir().join(format!("gi-notify-{}", std::process::id()));
        let socket = dir.join("run/notify");
        let reading = Nudge::default();
        listen(&socket, reading.clone()).unwrap();
        assert!(
            !reading.sleep(Duration::from_millis(50)),
            "nothing sent: no wake-up"
        );
        send(&socket);
        assert!(
            reading.sleep(Duration::from_secs(5)),
            "woken by the command"
        );
        let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o666, "mariadbd's account may send");
        // A second listener (the next start of the node) takes the socket over.
        listen(&socket, reading.clone()).unwrap();
        send(&socket);
        assert!(reading.sleep(Duration::from_secs(5)));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
