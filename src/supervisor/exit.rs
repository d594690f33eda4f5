//! The exit-code policy of the supervised child, in one pure function.

use nix::sys::wait::WaitStatus;

/// Exit code when the command cannot be found (shell convention, as tini).
pub const NOT_FOUND: u8 = 127;
/// Exit code when the command is found but cannot be executed.
pub const NOT_EXECUTABLE: u8 = 126;

/// The container exit code for a child's final wait status: its own code, or `128 + n`
/// when signal `n` killed it. `None` for statuses that are not final (stopped, continued).
pub fn code_for(status: WaitStatus) -> Option<u8> {
    match status {
        WaitStatus::Exited(_, code) => Some((code & 0xff) as u8),
        WaitStatus::Signaled(_, sig, _) => Some(((128 + sig as i32) & 0xff) as u8),
        _ => None,
    }
}

/// The exit code for a spawn error: 127 when the program does not exist, 126 when it
/// cannot be executed, 1 otherwise.
pub fn code_for_spawn_error(err: &std::io::Error) -> u8 {
    match err.kind() {
        std::io::ErrorKind::NotFound => NOT_FOUND,
        std::io::ErrorKind::PermissionDenied => NOT_EXECUTABLE,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::signal::Signal;
    use nix::unistd::Pid;

    #[test]
    fn codes() {
        let pid = Pid::from_raw(42);
        let cases = [
            (WaitStatus::Exited(pid, 0), Some(0)),
            (WaitStatus::Exited(pid, 3), Some(3)),
            (WaitStatus::Exited(pid, 255), Some(255)),
            (WaitStatus::Signaled(pid, Signal::SIGTERM, false), Some(143)),
            (WaitStatus::Signaled(pid, Signal::SIGKILL, true), Some(137)),
            (WaitStatus::Signaled(pid, Signal::SIGUSR1, false), Some(138)),
            (WaitStatus::Stopped(pid, Signal::SIGSTOP), None),
            (WaitStatus::Continued(pid), None),
        ];
        for (status, want) in cases {
            assert_eq!(code_for(status), want, "{status:?}");
        }
    }

    #[test]
    fn spawn_errors() {
        use std::io::{Error, ErrorKind};
        assert_eq!(code_for_spawn_error(&Error::from(ErrorKind::NotFound)), 127);
        assert_eq!(
            code_for_spawn_error(&Error::from(ErrorKind::PermissionDenied)),
            126
        );
        assert_eq!(
            code_for_spawn_error(&Error::from(ErrorKind::InvalidInput)),
            1
        );
    }
}
