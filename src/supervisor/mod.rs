//! PID-1 duties: signals, children, reaping and the exit code.
//!
//! One [`Supervisor`] owns the signalfd and is the only code that waits on children: it
//! drains `waitpid(-1, WNOHANG)` on every SIGCHLD and on a one-second tick, because SIGCHLDs
//! coalesce and an orphan re-parented to PID 1 must be reaped too. Anything that runs a
//! helper process (mariadb-install-db, the temporary server, initdb.d scripts) spawns it
//! through [`Supervisor::spawn`] and collects its status from here; nothing calls
//! `Child::wait`, which would race with the reaper (anchors-pid1-crates-style.md §1.8 #6).
//!
//! The same loop serves start-up and supervision, so a SIGTERM is never lost: during
//! start-up it ends start-up ([`Stopped`]), once mariadbd runs it is forwarded to it.

pub mod exit;
pub mod signals;

use std::collections::{HashMap, HashSet};
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use signals::Disposition;

/// How often the supervisor wakes up without a signal, to reap children whose SIGCHLD
/// coalesced with another one.
pub const TICK: Duration = Duration::from_secs(1);

/// Start-up was ended by a stop signal (SIGTERM, SIGINT or SIGQUIT).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("start-up stopped by {}", signals::name(self.0))]
pub struct Stopped(pub i32);

impl Stopped {
    /// The exit code for a stopped start-up: 128 + the signal number, as if the signal had
    /// killed the process.
    pub fn exit_code(self) -> u8 {
        ((128 + self.0) & 0xff) as u8
    }
}

/// Errors of a helper process run to completion.
#[derive(Debug, thiserror::Error)]
pub enum HelperError {
    /// The helper could not be started.
    #[error("cannot run {what}: {source}")]
    Spawn {
        /// What the helper is, for the log.
        what: String,
        /// The error from exec.
        source: std::io::Error,
    },
    /// A stop signal arrived while the helper ran; the helper was stopped.
    #[error(transparent)]
    Stopped(#[from] Stopped),
}

/// What woke the supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A signal was read (children have already been reaped when it is SIGCHLD).
    Signal(i32),
    /// The timeout passed without a signal.
    Timeout,
}

/// Owner of the signalfd and of every child's exit status.
pub struct Supervisor {
    /// Receives every blocked signal; see [`signals::block_all`].
    signals: SignalFd,
    /// Children spawned through [`Supervisor::spawn`] that have not been collected yet.
    spawned: HashSet<i32>,
    /// Exit statuses of spawned children, reaped but not yet collected.
    exited: HashMap<i32, WaitStatus>,
    /// Whether a stop signal (SIGTERM, SIGINT, SIGQUIT) came from outside.
    stop_received: bool,
    stop_flag: Arc<AtomicBool>,
    drain_delay: Duration,
}

/// Why [`Supervisor::supervise_with`] calls its callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// A wake-up (a signal, a child, or the one-second tick).
    Tick,
    /// The first stop signal from outside arrived; it is held (drained) or passed on right
    /// after the callback returns.
    StopSignal,
}

/// What [`Supervisor::supervise_with`]'s tick callback asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tick {
    /// Nothing to do.
    Continue,
    /// Stop the main child cleanly (SIGTERM), as the node's own decision.
    Stop,
    /// Kill the main child (SIGKILL). Only for a server that has not opened its storage.
    Kill,
}

impl Supervisor {
    /// Takes over the signalfd created by [`signals::block_all`].
    pub fn new(signals: SignalFd) -> Self {
        Supervisor {
            signals,
            spawned: HashSet::new(),
            exited: HashMap::new(),
            stop_received: false,
            stop_flag: Arc::new(AtomicBool::new(false)),
            drain_delay: Duration::ZERO,
        }
    }

    /// Makes this process the reaper of orphaned descendants when it is not PID 1 (tests,
    /// `docker run --init`); PID 1 is the reaper already. Returns whether it is PID 1.
    pub fn become_reaper() -> Result<bool, nix::Error> {
        if nix::unistd::getpid().as_raw() == 1 {
            return Ok(true);
        }
        nix::sys::prctl::set_child_subreaper(true)?;
        Ok(false)
    }

    /// Starts a child with an empty signal mask: `Command` keeps the parent's mask, and
    /// galera-init blocks everything.
    pub fn spawn(&mut self, cmd: &mut Command) -> std::io::Result<Pid> {
        let child = clean_signal_mask(cmd).spawn()?;
        let pid = child.id() as i32;
        // Dropping a `Child` neither waits for nor kills it: its status is reaped here.
        drop(child);
        self.spawned.insert(pid);
        Ok(Pid::from_raw(pid))
    }

    /// Collects every exited child without blocking.
    pub fn reap(&mut self) {
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return,
                Err(Errno::EINTR) => continue,
                Err(err) => {
                    log::warn!("waitpid failed: {err}");
                    return;
                }
                Ok(status) => {
                    let Some(pid) = status.pid() else { continue };
                    if exit::code_for(status).is_none() {
                        continue; // stopped or continued, not gone
                    }
                    if self.spawned.remove(&pid.as_raw()) {
                        self.exited.insert(pid.as_raw(), status);
                    } else {
                        log::debug!("reaped orphan {pid}: {status:?}");
                    }
                }
            }
        }
    }

    /// The final status of a spawned child, once it has been reaped.
    pub fn take_exit(&mut self, pid: Pid) -> Option<WaitStatus> {
        self.exited.remove(&pid.as_raw())
    }

    /// Waits up to `timeout` for a signal, reaping children on every wake-up.
    pub fn next_event(&mut self, timeout: Duration) -> Event {
        let event = self.read_signal(timeout);
        self.reap();
        event
    }

    fn read_signal(&mut self, timeout: Duration) -> Event {
        if let Ok(Some(info)) = self.signals.read_signal() {
            return Event::Signal(info.ssi_signo as i32);
        }
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        let mut fds = [PollFd::new(self.signals.as_fd(), PollFlags::POLLIN)];
        match poll(
            &mut fds,
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(n) if n > 0 => match self.signals.read_signal() {
                Ok(Some(info)) => Event::Signal(info.ssi_signo as i32),
                _ => Event::Timeout,
            },
            _ => Event::Timeout,
        }
    }

    /// Sleeps for `duration` during start-up, returning early with [`Stopped`] when a stop
    /// signal arrives. Other signals have no child to go to yet and are only logged.
    pub fn pause(&mut self, duration: Duration) -> Result<(), Stopped> {
        let deadline = Instant::now() + duration;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            if let Event::Signal(sig) = self.next_event(left) {
                self.startup_signal(sig)?;
            }
        }
    }

    /// Returns [`Stopped`] if a stop signal is already pending, without waiting.
    pub fn check_stop(&mut self) -> Result<(), Stopped> {
        while let Event::Signal(sig) = self.next_event(Duration::ZERO) {
            self.startup_signal(sig)?;
        }
        Ok(())
    }

    /// Whether a stop signal has come from outside (the orchestrator or a terminal).
    pub fn stop_received(&self) -> bool {
        self.stop_received
    }

    /// A flag set the moment a stop signal arrives, for other threads (the health
    /// endpoints drain at once).
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop_flag.clone()
    }

    /// Makes [`Supervisor::supervise_with`] hold a first stop signal for `delay` before it
    /// passes it on (a second one goes at once): the node drains, proxies see its health
    /// endpoints fail and move clients away, and only then does the server stop.
    pub fn set_drain_delay(&mut self, delay: Duration) {
        self.drain_delay = delay;
    }

    fn note_stop(&mut self) {
        self.stop_received = true;
        self.stop_flag.store(true, Ordering::SeqCst);
    }

    fn startup_signal(&mut self, sig: i32) -> Result<(), Stopped> {
        if signals::stops_startup(sig) {
            self.note_stop();
            log::info!("received {} during start-up: stopping", signals::name(sig));
            return Err(Stopped(sig));
        }
        if signals::disposition(sig) == Disposition::Forward {
            log::info!("received {} during start-up: ignored", signals::name(sig));
        }
        Ok(())
    }

    /// Starts a child whose stdin is a pipe, and returns the pipe's writing end.
    pub fn spawn_with_stdin(
        &mut self,
        cmd: &mut Command,
    ) -> std::io::Result<(Pid, Option<std::process::ChildStdin>)> {
        let mut child = clean_signal_mask(cmd).spawn()?;
        let stdin = child.stdin.take();
        let pid = child.id() as i32;
        drop(child);
        self.spawned.insert(pid);
        Ok((Pid::from_raw(pid), stdin))
    }

    /// Starts a child whose stderr is a pipe, and returns the pipe's reading end.
    pub fn spawn_with_stderr(
        &mut self,
        cmd: &mut Command,
    ) -> std::io::Result<(Pid, Option<std::process::ChildStderr>)> {
        let mut child = clean_signal_mask(cmd).spawn()?;
        let stderr = child.stderr.take();
        let pid = child.id() as i32;
        drop(child);
        self.spawned.insert(pid);
        Ok((Pid::from_raw(pid), stderr))
    }

    /// Runs a helper to completion; see [`Supervisor::wait`].
    pub fn run(&mut self, cmd: &mut Command, what: &str) -> Result<WaitStatus, HelperError> {
        let pid = self.spawn(cmd).map_err(|source| HelperError::Spawn {
            what: what.to_string(),
            source,
        })?;
        self.wait(pid)
    }

    /// Waits for a helper to exit. A stop signal is passed on to the helper as SIGTERM;
    /// once the helper has exited the result is [`HelperError::Stopped`].
    pub fn wait(&mut self, pid: Pid) -> Result<WaitStatus, HelperError> {
        let mut stopped = None;
        loop {
            if let Some(status) = self.take_exit(pid) {
                return match stopped {
                    Some(sig) => Err(HelperError::Stopped(Stopped(sig))),
                    None => Ok(status),
                };
            }
            if let Event::Signal(sig) = self.next_event(TICK)
                && let Err(Stopped(sig)) = self.startup_signal(sig)
            {
                stopped.get_or_insert(sig);
                send(pid, libc::SIGTERM);
            }
        }
    }

    /// Sends a signal to a spawned child that has not been reaped yet.
    pub fn signal(&mut self, pid: Pid, sig: i32) {
        if self.spawned.contains(&pid.as_raw()) {
            send(pid, sig);
        }
    }

    /// Supervises the main child until it exits, forwarding signals to it, and returns the
    /// container's exit code. Never panics and never kills on its own: stopping is the
    /// orchestrator's call, and InnoDB and Galera must be allowed to finish their shutdown.
    pub fn supervise(&mut self, main: Pid, name: &str) -> u8 {
        self.supervise_with(main, name, &mut |_| Tick::Continue)
    }

    /// [`Supervisor::supervise`], calling `on_tick` on every wake-up, and with
    /// [`Wake::StopSignal`] when the first stop signal arrives, before anything is done
    /// with it; when it returns [`Tick::Stop`] the main child gets one SIGTERM.
    pub fn supervise_with(
        &mut self,
        main: Pid,
        name: &str,
        on_tick: &mut dyn FnMut(Wake) -> Tick,
    ) -> u8 {
        let mut sent = Tick::Continue;
        let mut held: Option<(i32, Instant)> = None;
        loop {
            if let Some((sig, at)) = held
                && Instant::now() >= at
            {
                held = None;
                log::info!("forwarding {} to {name}", signals::name(sig));
                self.signal(main, sig);
            }
            match (on_tick(Wake::Tick), sent) {
                (Tick::Stop, Tick::Continue) => {
                    sent = Tick::Stop;
                    self.signal(main, libc::SIGTERM);
                }
                (Tick::Kill, Tick::Continue | Tick::Stop) => {
                    sent = Tick::Kill;
                    self.signal(main, libc::SIGKILL);
                }
                _ => {}
            }
            if let Some(status) = self.take_exit(main) {
                self.reap(); // finish the drain that saw it
                let code = exit::code_for(status).unwrap_or(1);
                match status {
                    WaitStatus::Signaled(_, sig, _) => {
                        log::info!("{name} was killed by {sig}; exiting with {code}")
                    }
                    _ => log::info!("{name} exited with code {code}"),
                }
                return code;
            }
            let wait = held.map_or(TICK, |(_, at)| {
                at.saturating_duration_since(Instant::now()).min(TICK)
            });
            if let Event::Signal(sig) = self.next_event(wait) {
                match signals::disposition(sig) {
                    Disposition::Reap => {}
                    Disposition::Ignore => {
                        log::debug!("ignoring {}", signals::name(sig))
                    }
                    Disposition::Forward => {
                        let stop = signals::stops_startup(sig);
                        let first = stop && !self.stop_received;
                        if stop {
                            self.note_stop();
                        }
                        if first {
                            // What the callback asks for now waits for the next wake-up.
                            let _ = on_tick(Wake::StopSignal);
                        }
                        if first && !self.drain_delay.is_zero() {
                            log::info!(
                                "received {}: draining for {:.1}s (DRAIN_DELAY) before passing \
                                 it to {name}",
                                signals::name(sig),
                                self.drain_delay.as_secs_f32()
                            );
                            held = Some((sig, Instant::now() + self.drain_delay));
                            continue;
                        }
                        if stop && held.take().is_some() {
                            log::info!("a second stop signal: not draining any longer");
                        }
                        log::info!("forwarding {} to {name}", signals::name(sig));
                        self.signal(main, sig);
                    }
                }
            }
        }
    }
}

/// Makes the child unblock every signal between fork and exec, so the program starts with the
/// signal state it expects.
fn clean_signal_mask(cmd: &mut Command) -> &mut Command {
    // SAFETY: the closure runs in the forked child before exec and only calls
    // sigemptyset and sigprocmask, which are async-signal-safe; it allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            let mut set = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
            libc::sigemptyset(set.as_mut_ptr());
            if libc::sigprocmask(libc::SIG_SETMASK, set.as_ptr(), std::ptr::null_mut()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    }
}

/// `kill(2)` with a raw signal number, so real-time signals can be forwarded too. A child
/// that is already gone (ESRCH) is not an error.
fn send(pid: Pid, sig: i32) {
    // SAFETY: kill has no memory-safety preconditions.
    let rc = unsafe { libc::kill(pid.as_raw(), sig) };
    if rc != 0 {
        log::debug!(
            "kill({pid}, {}) failed: {}",
            signals::name(sig),
            std::io::Error::last_os_error()
        );
    }
}
