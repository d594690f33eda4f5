//! `grastate.dat`: the node's last committed position in its cluster's history.
//!
//! Galera writes it on a clean shutdown with the real `seqno` and sets
//! `safe_to_bootstrap: 1` on the last node to leave. After a crash `seqno` is -1 and the
//! position must be recovered from InnoDB with `mariadbd --wsrep-recover`, whose log line
//! [`parse_recovered_position`] reads.

/// The file's name in the datadir.
pub const GRASTATE_FILE: &str = "grastate.dat";

/// The parsed content of `grastate.dat`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraState {
    /// The cluster's history UUID (all zeros when the node never joined a cluster).
    pub uuid: String,
    /// The last committed transaction, or -1 when unknown (crash, or running).
    pub seqno: i64,
    /// Whether Galera considers this node safe to bootstrap from.
    pub safe_to_bootstrap: bool,
}

/// The UUID of a node that has not joined any cluster.
pub const NIL_UUID: &str = "00000000-0000-0000-0000-000000000000";

/// Why `grastate.dat` could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(String);

/// Parses the text of `grastate.dat`.
pub fn parse(text: &str) -> Result<GraState, ParseError> {
    // Galera ends every line, the last included, with a line break (then pads with spaces
    // what a longer earlier version left): a file without one was cut short (a power loss
    // while Galera rewrote it), and its last line cannot be trusted: "seqno:   1" may have
    // been "seqno:   15". Galera itself skips such a line.
    if !text.is_empty() && !text.trim_end_matches(' ').ends_with('\n') {
        return Err(ParseError(
            "the file is cut short (its last line has no line break)".into(),
        ));
    }
    let mut uuid = None;
    let mut seqno = None;
    let mut safe = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key.trim() {
            "uuid" => {
                if !is_uuid(value) {
                    return Err(ParseError(format!("uuid {value:?} is not a UUID")));
                }
                uuid = Some(value.to_string());
            }
            "seqno" => {
                seqno = Some(
                    value
                        .parse::<i64>()
                        .map_err(|_| ParseError(format!("seqno {value:?} is not a number")))?,
                )
            }
            "safe_to_bootstrap" => safe = value == "1",
            _ => {}
        }
    }
    Ok(GraState {
        uuid: uuid.ok_or_else(|| ParseError("no uuid line".into()))?,
        seqno: seqno.ok_or_else(|| ParseError("no seqno line".into()))?,
        safe_to_bootstrap: safe,
    })
}

/// Returns the text of `grastate.dat` with `safe_to_bootstrap` set to `safe`: 1 for a
/// bootstrap the election (or the operator) decided on although Galera's own flag says
/// otherwise, 0 again when that bootstrap never reached a Primary component.
pub fn with_safe_to_bootstrap(text: &str, safe: bool) -> String {
    let line_for = format!("safe_to_bootstrap: {}\n", safe as u8);
    let mut out = String::new();
    let mut seen = false;
    for line in text.lines() {
        if line.trim_start().starts_with("safe_to_bootstrap:") {
            out.push_str(&line_for);
            seen = true;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !seen {
        out.push_str(&line_for);
    }
    out
}

/// Sets `safe_to_bootstrap` in the `grastate.dat` at `path`, atomically, keeping its owner.
pub fn set_safe_to_bootstrap(path: &std::path::Path, safe: bool) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let text = std::fs::read_to_string(path)?;
    let meta = std::fs::metadata(path)?;
    crate::fsutil::write_atomic(path, with_safe_to_bootstrap(&text, safe).as_bytes(), 0o660)?;
    let _ = nix::unistd::chown(
        path,
        Some(nix::unistd::Uid::from_raw(meta.uid())),
        Some(nix::unistd::Gid::from_raw(meta.gid())),
    );
    Ok(())
}

/// Reads the last `WSREP: Recovered position: <uuid>:<seqno>[,<gtid>]` line of a
/// `mariadbd --wsrep-recover` log (MariaDB 10.11 appends the GTID after a comma).
pub fn parse_recovered_position(log: &str) -> Option<(String, i64)> {
    log.lines().rev().find_map(|line| {
        let pos = line.split("Recovered position:").nth(1)?.trim();
        let (uuid, rest) = pos.split_once(':')?;
        let seqno = rest.split(',').next()?.trim().parse::<i64>().ok()?;
        is_uuid(uuid).then(|| (uuid.to_string(), seqno))
    })
}

/// Whether `s` is a UUID as Galera writes one (`8-4-4-4-12` hex digits).
pub fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.chars().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLEAN: &str = "# GALERA saved state\nversion: 2.1\n\
        uuid:    9acf4d34-acdb-11e6-bcc3-d3e36276629f\nseqno:   15\nsafe_to_bootstrap: 1\n";

    #[test]
    fn parses_grastate() {
        let cases = [
            (
                CLEAN,
                Ok(("9acf4d34-acdb-11e6-bcc3-d3e36276629f", 15, true)),
            ),
            (
                "version: 2.1\nuuid: 9acf4d34-acdb-11e6-bcc3-d3e36276629f\nseqno: -1\nsafe_to_bootstrap: 0\n",
                Ok(("9acf4d34-acdb-11e6-bcc3-d3e36276629f", -1, false)),
            ),
            (
                "version: 2.1\nuuid: 00000000-0000-0000-0000-000000000000\nseqno: -1\n",
                Ok((NIL_UUID, -1, false)),
            ),
            ("version: 2.1\nseqno: 3\n", Err("no uuid line")),
            ("uuid: nonsense\nseqno: 3\n", Err("is not a UUID")),
            (
                "uuid: 9acf4d34-acdb-11e6-bcc3-d3e36276629f\nseqno: x\n",
                Err("is not a number"),
            ),
            ("", Err("no uuid line")),
            (
                "uuid: 9acf4d34-acdb-11e6-bcc3-d3e36276629f\nseqno:   1",
                Err("cut short"),
            ),
            (
                "uuid: 9acf4d34-acdb-11e6-bcc3-d3e36276629f\nseqno:   1\nsafe_to_bootstrap: 0\n    ",
                Ok(("9acf4d34-acdb-11e6-bcc3-d3e36276629f", 1, false)),
            ),
        ];
        for (text, want) in cases {
            match (parse(text), want) {
                (Ok(got), Ok((uuid, seqno, safe))) => {
                    assert_eq!(got.uuid, uuid);
                    assert_eq!(got.seqno, seqno);
                    assert_eq!(got.safe_to_bootstrap, safe);
                }
                (Err(e), Err(msg)) => assert!(e.to_string().contains(msg), "{e}"),
                (got, want) => panic!("{text:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn sets_safe_to_bootstrap() {
        let unsafe_text = CLEAN.replace("safe_to_bootstrap: 1", "safe_to_bootstrap: 0");
        let fixed = with_safe_to_bootstrap(&unsafe_text, true);
        assert!(parse(&fixed).unwrap().safe_to_bootstrap);
        assert_eq!(parse(&fixed).unwrap().seqno, 15);
        assert!(
            !parse(&with_safe_to_bootstrap(&fixed, false))
                .unwrap()
                .safe_to_bootstrap
        );
        let old_format = "version: 2.1\nuuid: 9acf4d34-acdb-11e6-bcc3-d3e36276629f\nseqno: 2\n";
        assert!(
            parse(&with_safe_to_bootstrap(old_format, true))
                .unwrap()
                .safe_to_bootstrap
        );
        let dir = std::env::temp_dir().join(format!("gi-grastate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("grastate.dat");
        std::fs::write(&path, CLEAN).unwrap();
        set_safe_to_bootstrap(&path, false).unwrap();
        let back = parse(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert!(!back.safe_to_bootstrap);
        assert_eq!(back.seqno, 15);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn parses_recovered_positions() {
        let cases = [
            (
                "2026-11-27 13:00:00 0 [Note] WSREP: Recovered position: 9acf4d34-acdb-11e6-bcc3-d3e36276629f:42\n",
                Some(42),
            ),
            (
                "[Note] WSREP: Recovered position: 9acf4d34-acdb-11e6-bcc3-d3e36276629f:7,0-1-7\n",
                Some(7),
            ),
            (
                "[Note] WSREP: Recovered position: 9acf4d34-acdb-11e6-bcc3-d3e36276629f:3\n\
                 [Note] WSREP: Recovered position: 9acf4d34-acdb-11e6-bcc3-d3e36276629f:9,0-1-9\n",
                Some(9),
            ),
            (
                "[Note] WSREP: Recovered position: 00000000-0000-0000-0000-000000000000:-1\n",
                Some(-1),
            ),
            ("[ERROR] Aborting\n", None),
            ("WSREP: Recovered position: garbage\n", None),
        ];
        for (log, want) in cases {
            assert_eq!(parse_recovered_position(log).map(|(_, s)| s), want, "{log}");
        }
    }

    proptest::proptest! {
        /// Whatever grastate.dat holds (a power loss can cut it anywhere), parsing returns
        /// and a parsed state has a UUID and a position.
        #[test]
        fn any_grastate_parses_or_is_refused(text in r"(# GALERA saved state\n)?(version: 2\.1\n)?(uuid: *[0-9a-f-]{0,40}\n)?(seqno: *-?[0-9]{0,22}\n)?(safe_to_bootstrap: [01x]?\n?)?") {
            if let Ok(g) = parse(&text) {
                proptest::prop_assert!(is_uuid(&g.uuid));
            }
        }

        /// Cut short anywhere, a clean grastate.dat never gives another position.
        #[test]
        fn a_truncated_grastate_never_gives_another_position(cut in 0..CLEAN.len()) {
            if let Ok(g) = parse(&CLEAN[..cut]) {
                proptest::prop_assert_eq!(g.seqno, 15);
            }
        }

        /// Any text as `--wsrep-recover` output: returns, and a position is at least -1.
        #[test]
        fn any_recover_log_parses_or_gives_none(log in r"(.{0,40}WSREP: Recovered position: ?[0-9a-f-]{0,40}:?-?[0-9]{0,22}\n?){0,3}") {
            if let Some((_, seqno)) = parse_recovered_position(&log) {
                proptest::prop_assert!(seqno >= -1);
            }
        }
    }
}
