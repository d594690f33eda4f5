//! The signal mask and what each signal means to PID 1.
//!
//! PID 1 of a PID namespace never receives a signal whose disposition is the default one, so
//! a signal that arrives before a handler exists is silently lost. A *blocked* signal is queued
//! instead. That is why [`block_all`] must be the very first thing `main` does, before any
//! thread or runtime exists (threads inherit the mask of the thread that creates them): from
//! then on every signal waits in the queue until the supervisor reads it from the signalfd.
//! This is the catatonit/tini design (see shared/research/anchors-pid1-crates-style.md §1).

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

/// Errors while setting up signal handling.
#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    /// `pthread_sigmask` failed.
    #[error("cannot block signals: {0}")]
    Mask(nix::Error),
    /// `signalfd` failed.
    #[error("cannot create the signalfd: {0}")]
    SignalFd(nix::Error),
}

/// Synchronous fault signals: they are delivered to the thread that caused them and must
/// keep their default action, or a crash in galera-init would hang instead of dying.
const FAULT_SIGNALS: [Signal; 7] = [
    Signal::SIGFPE,
    Signal::SIGILL,
    Signal::SIGSEGV,
    Signal::SIGBUS,
    Signal::SIGABRT,
    Signal::SIGTRAP,
    Signal::SIGSYS,
];

/// Blocks every asynchronous signal in the calling thread and returns a non-blocking
/// signalfd that receives them.
///
/// Call it first in `main`, while the process has a single thread.
///
/// It also gives every blocked signal but SIGPIPE its default disposition: a signal that the
/// parent ignored (`nohup` ignores SIGHUP) would otherwise be discarded instead of queued,
/// never reaching the supervisor nor mariadbd, and an exec'd child would inherit the ignore.
/// SIGPIPE stays ignored (Rust's runtime ignores it): a write to a closed socket must give
/// galera-init an error, not a signal to forward; spawned children get it back by default.
pub fn block_all() -> Result<SignalFd, SignalError> {
    let mut mask = SigSet::all();
    for sig in FAULT_SIGNALS {
        mask.remove(sig);
    }
    mask.thread_set_mask().map_err(SignalError::Mask)?;
    for sig in Signal::iterator() {
        if mask.contains(sig) && !matches!(sig, Signal::SIGKILL | Signal::SIGSTOP | Signal::SIGPIPE)
        {
            // SAFETY: SIG_DFL installs no handler, so no code of ours runs in signal context;
            // the process has a single thread at this point.
            let _ = unsafe { nix::sys::signal::signal(sig, nix::sys::signal::SigHandler::SigDfl) };
        }
    }
    SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .map_err(SignalError::SignalFd)
}

/// Gives the calling thread back the default signal mask, for a short-lived command that
/// is not PID 1 and supervises nothing (`galera-init bootstrap`): Ctrl-C must work.
pub fn unblock_all() -> Result<(), SignalError> {
    SigSet::empty().thread_set_mask().map_err(SignalError::Mask)
}

/// What the supervisor does with a signal it has read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// SIGCHLD: collect exited children.
    Reap,
    /// Job-control signals: a database server must not be stopped from a terminal, and
    /// galera-init itself must not stop either.
    Ignore,
    /// Everything else goes to the main child's PID (not its process group: mariadbd owns
    /// its SST helpers and stops them itself).
    Forward,
}

/// Classifies a raw signal number (real-time signals included).
pub fn disposition(signo: i32) -> Disposition {
    match Signal::try_from(signo) {
        Ok(Signal::SIGCHLD) => Disposition::Reap,
        Ok(Signal::SIGTSTP | Signal::SIGTTIN | Signal::SIGTTOU) => Disposition::Ignore,
        _ => Disposition::Forward,
    }
}

/// Whether a signal received during start-up (before the main child runs) ends start-up.
///
/// These are the signals an orchestrator or a terminal uses to stop a container; anything
/// else (SIGHUP, SIGUSR1…) has nobody to go to yet and is only logged.
pub fn stops_startup(signo: i32) -> bool {
    matches!(
        Signal::try_from(signo),
        Ok(Signal::SIGTERM | Signal::SIGINT | Signal::SIGQUIT)
    )
}

/// A printable name for a raw signal number.
pub fn name(signo: i32) -> String {
    match Signal::try_from(signo) {
        Ok(sig) => sig.as_str().to_string(),
        Err(_) => format!("signal {signo}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispositions() {
        let cases = [
            (libc::SIGCHLD, Disposition::Reap),
            (libc::SIGTSTP, Disposition::Ignore),
            (libc::SIGTTIN, Disposition::Ignore),
            (libc::SIGTTOU, Disposition::Ignore),
            (libc::SIGTERM, Disposition::Forward),
            (libc::SIGINT, Disposition::Forward),
            (libc::SIGHUP, Disposition::Forward),
            (libc::SIGQUIT, Disposition::Forward),
            (libc::SIGUSR1, Disposition::Forward),
            (libc::SIGUSR2, Disposition::Forward),
            (libc::SIGWINCH, Disposition::Forward),
            (libc::SIGRTMIN() + 3, Disposition::Forward),
        ];
        for (sig, want) in cases {
            assert_eq!(disposition(sig), want, "signal {sig}");
        }
    }

    #[test]
    fn only_stop_signals_end_startup() {
        assert!(stops_startup(libc::SIGTERM));
        assert!(stops_startup(libc::SIGINT));
        assert!(stops_startup(libc::SIGQUIT));
        assert!(!stops_startup(libc::SIGHUP));
        assert!(!stops_startup(libc::SIGUSR1));
        assert!(!stops_startup(libc::SIGCHLD));
    }
}
