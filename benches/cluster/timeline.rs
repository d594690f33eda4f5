//! What each node is doing, sampled every 100 ms while a cluster forms, and the picture of
//! it: one bar per node, coloured by phase.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::lab::Node;
use crate::nodes::{self, Kind};

/// What a node is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    /// galera-init waits for DNS to list it, or recovers its position.
    Discover,
    /// galera-init waits for the election (settle window, peers, the seed's Primary).
    Wait,
    /// Initialising a datadir or starting mariadbd.
    Start,
    /// Receiving a state transfer (SST or IST), or catching up.
    Transfer,
    /// Synced (or serving as a donor).
    Synced,
}

impl Label {
    fn colour(self) -> &'static str {
        match self {
            Label::Discover => "#b0b0b0",
            Label::Wait => "#f0c040",
            Label::Start => "#6a9fd8",
            Label::Transfer => "#e07050",
            Label::Synced => "#50a050",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Label::Discover => "discovering",
            Label::Wait => "waiting (election)",
            Label::Start => "init / starting mariadbd",
            Label::Transfer => "state transfer",
            Label::Synced => "Synced",
        }
    }
}

/// One node's phases: from when, which.
#[derive(Debug, Clone)]
pub struct Track {
    /// The node's name.
    pub name: String,
    /// Changes of phase, in order, as offsets from the start.
    pub changes: Vec<(Duration, Label)>,
}

/// A sampled run.
#[derive(Debug, Clone)]
pub struct Timeline {
    /// What ran, e.g. "galera-init".
    pub title: String,
    /// One track per node.
    pub tracks: Vec<Track>,
    /// When the last node was Synced.
    pub end: Duration,
}

fn label(node: &Node, kind: Kind) -> Option<Label> {
    let status = nodes::status(node, kind);
    if let Some(s) = &status {
        return Some(match s.state.as_str() {
            "Synced" | "Donor/Desynced" => Label::Synced,
            "Joining" | "Joiner" | "Joined" | "Joining: receiving State Transfer" => {
                Label::Transfer
            }
            _ => Label::Start,
        });
    }
    if node.data_dir().join("sst_in_progress").exists() {
        return Some(Label::Transfer);
    }
    match kind {
        Kind::Hand => Some(Label::Start),
        Kind::GaleraInit => {
            let agent = ureq::Agent::config_builder()
                .timeout_global(Some(Duration::from_millis(300)))
                .build()
                .new_agent();
            let v: serde_json::Value = agent
                .get(&format!("http://{}:9200/state", node.addr))
                .call()
                .ok()?
                .body_mut()
                .read_json()
                .ok()?;
            Some(match v["phase"].as_str()? {
                "discovering" | "recovering" => Label::Discover,
                "waiting" => Label::Wait,
                _ => Label::Start,
            })
        }
    }
}

/// Samples `nodes` every 100 ms from `t0` until `stop`.
pub fn sample(
    nodes: Vec<(Node, Kind)>,
    t0: Instant,
    stop: Arc<AtomicBool>,
) -> JoinHandle<Vec<Track>> {
    std::thread::spawn(move || {
        let mut tracks: Vec<Track> = nodes
            .iter()
            .map(|(n, _)| Track {
                name: n.hostname.clone(),
                changes: Vec::new(),
            })
            .collect();
        while !stop.load(Ordering::SeqCst) {
            for (i, (n, k)) in nodes.iter().enumerate() {
                // Before galera-init answers at all, it is discovering; a hand-started
                // node is starting.
                let l = label(n, *k).unwrap_or(match k {
                    Kind::GaleraInit => Label::Discover,
                    Kind::Hand => Label::Start,
                });
                let t = tracks[i].changes.last().map(|(_, l)| *l);
                if t != Some(l) {
                    tracks[i].changes.push((t0.elapsed(), l));
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        tracks
    })
}

/// An SVG of the timelines, one panel each, on a common time axis.
pub fn svg(timelines: &[Timeline], caption: &str) -> String {
    let left = 150.0;
    let width = 900.0;
    let plot = width - left - 30.0;
    let row = 22.0;
    let span = timelines
        .iter()
        .map(|t| t.end.as_secs_f64())
        .fold(1.0, f64::max)
        .ceil()
        + 1.0;
    let scale = plot / span;
    let mut y = 40.0;
    let mut body = String::new();
    for t in timelines {
        let _ = writeln!(
            body,
            r#"<text x="10" y="{}" font-weight="bold">{} (all Synced at {:.1} s)</text>"#,
            y + 14.0,
            esc(&t.title),
            t.end.as_secs_f64()
        );
        y += 22.0;
        for track in &t.tracks {
            let _ = writeln!(
                body,
                r#"<text x="20" y="{}">{}</text>"#,
                y + 15.0,
                esc(&track.name)
            );
            for (i, (from, l)) in track.changes.iter().enumerate() {
                let to = track
                    .changes
                    .get(i + 1)
                    .map(|(t, _)| *t)
                    .unwrap_or(t.end.max(*from));
                let x = left + from.as_secs_f64() * scale;
                let w = ((to.as_secs_f64() - from.as_secs_f64()) * scale).max(1.0);
                let _ = writeln!(
                    body,
                    r#"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{}" fill="{}"><title>{}: {} from {:.1} s</title></rect>"#,
                    row - 4.0,
                    l.colour(),
                    esc(&track.name),
                    l.name(),
                    from.as_secs_f64()
                );
            }
            y += row;
        }
        y += 12.0;
    }
    // The time axis.
    let _ = writeln!(
        body,
        r##"<line x1="{left}" y1="{y}" x2="{}" y2="{y}" stroke="#333"/>"##,
        left + plot
    );
    let step = if span > 40.0 { 10 } else { 5 };
    for s in (0..=span as u32).step_by(step) {
        let x = left + s as f64 * scale;
        let _ = writeln!(
            body,
            r##"<line x1="{x:.1}" y1="{y}" x2="{x:.1}" y2="{}" stroke="#333"/><text x="{x:.1}" y="{}" text-anchor="middle">{s} s</text>"##,
            y + 5.0,
            y + 18.0
        );
    }
    y += 34.0;
    // The legend.
    let mut x = left;
    for l in [
        Label::Discover,
        Label::Wait,
        Label::Start,
        Label::Transfer,
        Label::Synced,
    ] {
        let _ = writeln!(
            body,
            r#"<rect x="{x}" y="{}" width="14" height="14" fill="{}"/><text x="{}" y="{}">{}</text>"#,
            y - 11.0,
            l.colour(),
            x + 18.0,
            y,
            l.name()
        );
        x += 40.0 + 7.0 * l.name().len() as f64;
    }
    y += 16.0;
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{h}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="10" y="20" font-size="14" font-weight="bold">{}</text>
{body}</svg>
"#,
        esc(caption),
        h = y + 10.0
    )
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
