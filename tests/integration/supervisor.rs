//! PID-1 semantics with plain commands (`galera-init COMMAND…`), both as a child subreaper
//! of the test and as real PID 1 of a PID namespace.

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::lab::{bin, wait_until};

fn scratch(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("sup-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

fn spawn(args: &[&str]) -> Child {
    Command::new(bin())
        .args(args)
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Runs galera-init as PID 1 of a new PID namespace.
fn spawn_pid1(args: &[&str]) -> Child {
    Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc"])
        .arg(bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_code(child: &mut Child, timeout: Duration) -> i32 {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            use std::os::unix::process::ExitStatusExt;
            return status
                .code()
                .unwrap_or_else(|| 128 + status.signal().unwrap());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("galera-init did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn code_of(args: &[&str]) -> i32 {
    wait_code(&mut spawn(args), Duration::from_secs(20))
}

#[test]
fn exit_codes_pass_through() {
    for code in [0, 1, 2, 42, 126, 127, 255] {
        assert_eq!(code_of(&["sh", "-c", &format!("exit {code}")]), code);
    }
    for (sig, code) in [("TERM", 143), ("USR1", 138), ("KILL", 137), ("QUIT", 131)] {
        assert_eq!(
            code_of(&["sh", "-c", &format!("kill -{sig} $$")]),
            code,
            "{sig}"
        );
    }
}

#[test]
fn exit_codes_pass_through_as_pid1() {
    crate::lab::require_lab();
    assert_eq!(
        wait_code(
            &mut spawn_pid1(&["sh", "-c", "exit 7"]),
            Duration::from_secs(20)
        ),
        7
    );
    assert_eq!(
        wait_code(
            &mut spawn_pid1(&["sh", "-c", "kill -USR2 $$"]),
            Duration::from_secs(20)
        ),
        128 + 12
    );
}

#[test]
fn commands_that_cannot_run() {
    let d = scratch("exec");
    let script = d.join("not-executable");
    fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
    assert_eq!(code_of(&["/nonexistent/command"]), 127);
    assert_eq!(code_of(&[script.to_str().unwrap()]), 126);
    let mut child = spawn(&["/nonexistent/command"]);
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(wait_code(&mut child, Duration::from_secs(5)), 127);
    assert!(err.contains("cannot run /nonexistent/command"), "{err}");
}

/// Every forwardable signal reaches the child, job-control signals do not, and galera-init
/// is not stopped by them.
#[test]
fn signals_are_forwarded_to_the_child() {
    let d = scratch("forward");
    let out = d.join("got");
    let ready = d.join("ready");
    let script = format!(
        "for s in HUP INT USR1 USR2 WINCH TSTP TTIN TTOU; do trap \"echo $s >> {out}\" $s; done; \
         trap 'echo TERM >> {out}; exit 0' TERM; echo > {ready}; \
         while :; do sleep 0.05; done",
        out = out.display(),
        ready = ready.display()
    );
    let mut child = spawn(&["sh", "-c", &script]);
    let pid = Pid::from_raw(child.id() as i32);
    assert!(wait_until(Duration::from_secs(10), || ready.exists()));
    let got = || fs::read_to_string(&out).unwrap_or_default();
    for sig in [
        Signal::SIGHUP,
        Signal::SIGINT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
    ] {
        kill(pid, sig).unwrap();
        let name = &sig.as_str()[3..];
        assert!(
            wait_until(Duration::from_secs(5), || got().lines().any(|l| l == name)),
            "{name} not forwarded: {:?}",
            got()
        );
    }
    for sig in [Signal::SIGTSTP, Signal::SIGTTIN, Signal::SIGTTOU] {
        kill(pid, sig).unwrap();
    }
    // A later signal arrives in order after them, so they had their chance to be forwarded.
    kill(pid, Signal::SIGUSR1).unwrap();
    assert!(wait_until(Duration::from_secs(5), || got()
        .matches("USR1")
        .count()
        == 2));
    for name in ["TSTP", "TTIN", "TTOU"] {
        assert!(
            !got().contains(name),
            "{name} must not be forwarded: {:?}",
            got()
        );
    }
    kill(pid, Signal::SIGTERM).unwrap();
    assert_eq!(wait_code(&mut child, Duration::from_secs(10)), 0);
    assert!(got().ends_with("TERM\n"));
}

/// Counts the zombies among the children of `pid`.
fn zombie_children(pid: u32) -> usize {
    let children =
        fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    children
        .split_whitespace()
        .filter(|c| {
            fs::read_to_string(format!("/proc/{c}/stat"))
                .map(|s| {
                    s.rsplit(')')
                        .next()
                        .unwrap_or("")
                        .trim_start()
                        .starts_with('Z')
                })
                .unwrap_or(false)
        })
        .count()
}

fn orphans_are_reaped(pid1_mode: bool) {
    let d = scratch(if pid1_mode { "orphans-pid1" } else { "orphans" });
    let spawned = d.join("spawned");
    // The inner shell starts 100 short sleeps and exits: they become orphans of galera-init.
    let script = format!(
        "sh -c 'for i in $(seq 100); do sleep 1 & done; echo done > {}'; exec sleep 30",
        spawned.display()
    );
    let mut child = if pid1_mode {
        spawn_pid1(&["sh", "-c", &script])
    } else {
        spawn(&["sh", "-c", &script])
    };
    let init_pid = if pid1_mode {
        let u = child.id();
        let mut p = 0;
        assert!(wait_until(Duration::from_secs(5), || {
            p = fs::read_to_string(format!("/proc/{u}/task/{u}/children"))
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse().ok())
                .unwrap_or(0);
            p != 0
        }));
        p
    } else {
        child.id()
    };
    assert!(wait_until(Duration::from_secs(10), || spawned.exists()));
    let count = || {
        fs::read_to_string(format!("/proc/{init_pid}/task/{init_pid}/children"))
            .unwrap_or_default()
            .split_whitespace()
            .count()
    };
    // The orphans really were galera-init's children at some point…
    let mut peak = 0;
    // …and all of them are gone (reaped, not left as zombies) while the main child still runs.
    let reaped = wait_until(Duration::from_secs(10), || {
        peak = peak.max(count());
        count() == 1 && zombie_children(init_pid) == 0
    });
    assert!(
        reaped,
        "children left: {}, zombies: {}",
        count(),
        zombie_children(init_pid)
    );
    assert!(peak > 1, "the orphans never reached galera-init");
    kill(Pid::from_raw(init_pid as i32), Signal::SIGTERM).unwrap();
    assert_eq!(wait_code(&mut child, Duration::from_secs(10)), 143);
}

#[test]
fn orphans_are_reaped_as_subreaper() {
    orphans_are_reaped(false);
}

#[test]
fn orphans_are_reaped_as_pid1() {
    crate::lab::require_lab();
    orphans_are_reaped(true);
}

/// catatonit#4: the main child's SIGCHLD coalesces with a grandchild's. galera-init must
/// still notice the main child's exit, every time.
#[test]
fn coalesced_sigchld_never_hangs() {
    for _ in 0..100 {
        let code = wait_code(
            &mut spawn(&["sh", "-c", "sh -c 'sleep 0.01 & kill -9 $$'; exit 127"]),
            Duration::from_secs(10),
        );
        assert_eq!(code, 127);
    }
}

/// A SIGTERM that arrives at any moment of start-up, even before galera-init has set up
/// anything, is never lost: galera-init always ends with 143 (stopped, or its child killed).
#[test]
fn a_signal_during_startup_is_not_lost() {
    for i in 0..60u64 {
        let mut child = spawn(&["sleep", "30"]);
        std::thread::sleep(Duration::from_micros((i * 331) % 20_000));
        kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
        assert_eq!(
            wait_code(&mut child, Duration::from_secs(10)),
            143,
            "iteration {i}"
        );
    }
}

/// The child starts with an empty signal mask and no ignored signals, whatever galera-init
/// blocked for itself.
#[test]
fn child_starts_with_clean_signal_state() {
    let out = Command::new(bin())
        .args(["grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("SigBlk:\t0000000000000000"), "{text}");
    let ign = text.lines().find(|l| l.starts_with("SigIgn")).unwrap();
    let mask = u64::from_str_radix(ign.split_whitespace().nth(1).unwrap(), 16).unwrap();
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        assert_eq!(
            mask & (1 << (sig - 1)),
            0,
            "{sig} ignored in the child: {text}"
        );
    }
}

#[test]
fn help_and_version() {
    let out = Command::new(bin()).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("DB_SERVICE_NAME") && help.contains("--stop-grace-period"),
        "{help}"
    );
    let out = Command::new(bin()).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
}
