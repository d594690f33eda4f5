//! Runs the figures asked for and writes docs/benchmarks.md: the machine, the number of runs,
//! every figure's median and spread beside its baseline, the ratio, and the goal.

use std::fmt::Write as _;
use std::process::Command;
use std::time::Instant;

use crate::Args;
use crate::figures::{
    self, ColdRun, FailoverRuns, Footprint, HealthRuns, JoinRuns, LagRuns, OutageRuns,
};
use crate::nodes::Kind;
use crate::stats::Series;
use crate::timeline::{self, Timeline};

/// Figure 1's results.
#[derive(Debug, Default)]
pub struct Cold {
    /// galera-init, seconds.
    pub gi: Series,
    /// By hand with rsync SST.
    pub rsync: Series,
    /// By hand with mariabackup SST.
    pub mariabackup: Series,
}

/// Figure 3's results.
#[derive(Debug, Default)]
pub struct Outage {
    /// galera-init after a power cut.
    pub gi_power: OutageRuns,
    /// By hand after a power cut.
    pub hand_power: OutageRuns,
    /// galera-init after a graceful full stop.
    pub gi_graceful: OutageRuns,
    /// By hand after a graceful full stop.
    pub hand_graceful: OutageRuns,
}

/// Everything measured.
#[derive(Debug, Default)]
pub struct Results {
    /// Figure 1.
    pub cold: Option<Cold>,
    /// Figure 2, one entry per data size.
    pub join: Vec<JoinRuns>,
    /// Figure 3.
    pub outage: Option<Outage>,
    /// Figure 4: with eviction on proof (the default), and with Galera's own suspicion.
    pub failover: Option<(FailoverRuns, FailoverRuns)>,
    /// Figure 5.
    pub health: Option<HealthRuns>,
    /// Figure 7: with state notifications (the default), and with the monitor's readings
    /// alone.
    pub lag: Option<(LagRuns, LagRuns)>,
    /// Figure 6.
    pub footprint: Option<Footprint>,
    /// The cold-start timeline.
    pub svg: Option<String>,
    /// How long the benchmark took, seconds.
    pub took: f64,
}

fn wants(args: &Args, f: &str) -> bool {
    args.only.iter().any(|o| o == f)
}

fn progress(what: &str, t0: Instant) {
    eprintln!("[{:>6.0}s] {what}", t0.elapsed().as_secs_f64());
}

/// The run of median duration.
fn median_run(runs: &[ColdRun]) -> Option<Timeline> {
    let mut v: Vec<&ColdRun> = runs.iter().collect();
    v.sort_by_key(|r| r.took);
    v.get(v.len() / 2).map(|r| r.timeline.clone())
}

/// Runs every figure `args` asks for.
pub fn run(args: &Args) -> Results {
    let t0 = Instant::now();
    let mut r = Results::default();
    if wants(args, "cold") {
        let mut c = Cold::default();
        let (mut gi, mut rs, mut mb) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..args.runs {
            for k in 0..3 {
                match (i + k) % 3 {
                    0 => {
                        progress(&format!("cold start {}: galera-init", i + 1), t0);
                        gi.push(figures::cold_gi(&[]));
                    }
                    1 => {
                        progress(&format!("cold start {}: by hand, rsync", i + 1), t0);
                        rs.push(figures::cold_hand("rsync"));
                    }
                    _ => {
                        progress(&format!("cold start {}: by hand, mariabackup", i + 1), t0);
                        mb.push(figures::cold_hand("mariabackup"));
                    }
                }
            }
        }
        for (runs, s) in [
            (&gi, &mut c.gi),
            (&rs, &mut c.rsync),
            (&mb, &mut c.mariabackup),
        ] {
            for run in runs.iter() {
                s.push(run.took.as_secs_f64());
            }
        }
        let timelines: Vec<Timeline> = [&gi, &rs, &mb]
            .iter()
            .filter_map(|runs| median_run(runs))
            .collect();
        r.svg = Some(timeline::svg(
            &timelines,
            "Cold start of three fresh nodes (the run of median duration of each)",
        ));
        r.cold = Some(c);
    }
    if wants(args, "join") {
        progress("scale-out join", t0);
        r.join = figures::join(args.runs, args.large_mib);
    }
    if wants(args, "outage") {
        let mut o = Outage::default();
        progress("power cut: galera-init", t0);
        o.gi_power = figures::outage(Kind::GaleraInit, true, args.runs);
        progress("power cut: by hand", t0);
        o.hand_power = figures::outage(Kind::Hand, true, args.runs);
        progress("graceful full stop: by hand", t0);
        o.hand_graceful = figures::outage(Kind::Hand, false, args.runs);
        progress("graceful full stop: galera-init", t0);
        o.gi_graceful = figures::outage(Kind::GaleraInit, false, args.runs);
        r.outage = Some(o);
    }
    if ["failover", "lag", "health", "footprint"]
        .iter()
        .any(|f| wants(args, f))
    {
        progress(
            "a running cluster for failover, health checks, footprint",
            t0,
        );
        let mut c = figures::running3(&[]);
        if wants(args, "footprint") {
            // Idle for a moment first: start-up's allocations are behind it.
            std::thread::sleep(std::time::Duration::from_secs(15));
            let image = args.image.as_ref().map(|(i, b)| (i.as_str(), b.as_str()));
            r.footprint = Some(figures::footprint(&c, image));
        }
        if wants(args, "health") {
            progress("health check latency", t0);
            r.health = Some(figures::health(&c, args.health_runs));
        }
        let (failover, lag) = (wants(args, "failover"), wants(args, "lag"));
        if failover || lag {
            progress("writer failover through HAProxy, verdict lag", t0);
            let on_proof = failover.then(|| figures::failover(&mut c, args.runs));
            let quick = lag.then(|| figures::verdict_lag(&mut c, args.runs));
            drop(c);
            progress(
                "the same before issue 18: Galera's own suspicion, the readings alone",
                t0,
            );
            let mut c = figures::running3(&figures::BEFORE);
            r.failover = on_proof.map(|p| (p, figures::failover(&mut c, args.runs)));
            r.lag = quick.map(|q| (q, figures::verdict_lag(&mut c, args.runs)));
        }
    }
    r.took = t0.elapsed().as_secs_f64();
    r
}

fn sh(cmd: &str) -> String {
    Command::new("sh")
        .args(["-c", cmd])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn yes(ok: bool) -> &'static str {
    if ok { "**met**" } else { "not met" }
}

/// One row of a table: figure, galera-init, baseline, ratio, goal.
fn row(t: &mut String, cells: &[String]) {
    let _ = writeln!(t, "| {} |", cells.join(" | "));
}

/// The report.
pub fn markdown(args: &Args, r: &Results) -> String {
    let settle = galera_init::config::DEFAULT_SETTLE_WINDOW.as_secs_f64();
    let mut t = String::new();
    let _ = writeln!(
        t,
        "Every figure is measured beside its baseline in the same invocation, alternating \
         which runs first; ratios are of runs made side by side. Times are seconds unless \
         marked; cells show the median and, in brackets, the smallest and largest run.\n"
    );
    let _ = writeln!(t, "## Machine\n");
    let _ = writeln!(
        t,
        "- {} ({} cores), {} MiB RAM, Linux {}\n- {}\n- {}, HAProxy {}\n- galera-init {} \
         (commit {}), release build\n- {} runs of each figure ({} health checks of each \
         kind); the whole benchmark took {:.0} min\n",
        sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs"),
        sh("nproc"),
        sh("awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo"),
        sh("uname -r"),
        sh("mariadbd --version"),
        sh("dpkg-query -W -f='galera-4 ${Version}' galera-4"),
        sh("haproxy -v | head -1 | awk '{print $3}'"),
        env!("CARGO_PKG_VERSION"),
        sh("git rev-parse --short HEAD"),
        args.runs,
        args.health_runs,
        r.took / 60.0
    );
    let _ = writeln!(t, "## Results\n");
    let _ = writeln!(t, "| Figure | galera-init | Baseline | Ratio | Goal |");
    let _ = writeln!(t, "|---|---|---|---|---|");
    if let Some(c) = &r.cold {
        let ratio = c.gi.ratios(&c.rsync);
        let net = Series(
            c.gi.0
                .iter()
                .zip(&c.rsync.0)
                .map(|(g, h)| (g - settle) / h)
                .collect(),
        );
        row(
            &mut t,
            &[
                "1. Cold start, 3 fresh nodes to 3 Synced".into(),
                c.gi.show(1),
                format!("by hand, rsync SST: {}", c.rsync.show(1)),
                format!(
                    "{} (without the {settle:.0} s settle window: {})",
                    ratio.show(2),
                    net.show(2)
                ),
                format!(
                    "≤ 1.20 plus the settle window: {}",
                    yes(net.median() <= 1.2)
                ),
            ],
        );
        row(
            &mut t,
            &[
                "1. (the same)".into(),
                c.gi.show(1),
                format!("by hand, mariabackup SST: {}", c.mariabackup.show(1)),
                c.gi.ratios(&c.mariabackup).show(2),
                "–".into(),
            ],
        );
    }
    for j in &r.join {
        row(
            &mut t,
            &[
                format!(
                    "2. Scale-out join, 4th node, donor datadir {:.0} MiB",
                    j.datadir_mib
                ),
                format!("{} ({} SST)", j.gi.show(1), j.method),
                format!("bare mariadbd, {} SST: {}", j.method, j.hand.show(1)),
                j.gi.ratios(&j.hand).show(2),
                "–".into(),
            ],
        );
    }
    if let Some(o) = &r.outage {
        for (what, gi, hand, goal) in [
            ("power cut", &o.gi_power, &o.hand_power, 10.0),
            ("graceful full stop", &o.gi_graceful, &o.hand_graceful, 20.0),
        ] {
            row(
                &mut t,
                &[
                    format!(
                        "3. Full outage, {what}: last node's start to a Primary component of 3"
                    ),
                    gi.primary.show(1),
                    format!(
                        "by hand, knowing which node to start: {}",
                        hand.primary.show(1)
                    ),
                    gi.primary.ratios(&hand.primary).show(2),
                    "–".into(),
                ],
            );
            row(
                &mut t,
                &[
                    format!("3. Full outage, {what}: restart to 3 Synced (total)"),
                    gi.total.show(1),
                    format!("by hand: {}", hand.total.show(1)),
                    gi.total.ratios(&hand.total).show(2),
                    format!("< {goal:.0} s: {}", yes(gi.total.median() < goal)),
                ],
            );
            row(
                &mut t,
                &[
                    format!("3. ({what}: the stop itself, before the restart)"),
                    gi.stop.show(1),
                    format!("by hand: {}", hand.stop.show(1)),
                    gi.stop.ratios(&hand.stop).show(2),
                    "–".into(),
                ],
            );
        }
    }
    if let Some((on_proof, own)) = &r.failover {
        for (fault, (proxy, direct)) in &on_proof.0 {
            let Some((own_proxy, own_direct)) = own.0.get(fault) else {
                continue;
            };
            let goal = match fault {
                figures::Fault::ServerKill => 1.0,
                figures::Fault::NodeKill => 1.5,
                figures::Fault::Drain => 1.0,
            };
            row(
                &mut t,
                &[
                    format!(
                        "4. Writer {}: longest window without an acknowledged write",
                        fault.words()
                    ),
                    format!(
                        "through HAProxy: {} (straight to a survivor: {})",
                        proxy.show(2),
                        direct.show(2)
                    ),
                    format!(
                        "Galera's own suspicion (`EVICT_ON_PROOF=no`), straight to a \
                         survivor: {} (through HAProxy: {})",
                        own_direct.show(2),
                        own_proxy.show(2)
                    ),
                    proxy.ratios(own_direct).show(2),
                    format!(
                        "≤ {goal:.1} s through HAProxy: {}",
                        yes(proxy.median() <= goal)
                    ),
                ],
            );
        }
    }
    if let Some((quick, readings)) = &r.lag {
        let (q, b) = (&quick.synced_to_health, &readings.synced_to_health);
        row(
            &mut t,
            &[
                "7. Verdict lag, ms: a rejoining node's server says Synced to its `/health` 200 \
                 (median)"
                    .into(),
                format!("with state notifications: {}", q.show(0)),
                format!(
                    "the monitor's readings alone (`STATE_NOTIFY=no`): {}",
                    b.show(0)
                ),
                q.ratios(b).show(2),
                format!("≤ 100 ms: {}", yes(q.median() <= 100.0)),
            ],
        );
    }
    if let Some(h) = &r.health {
        row(
            &mut t,
            &[
                "5. Health check latency, ms: median".into(),
                format!("`galera-init healthcheck`: {:.2}", h.healthcheck.median()),
                format!(
                    "`mariadb -e \"SHOW STATUS LIKE 'wsrep_%'\"`: {:.2}",
                    h.client.median()
                ),
                format!("{:.3}", h.healthcheck.median() / h.client.median()),
                format!(
                    "≤ 0.1: {}",
                    yes(h.healthcheck.median() <= 0.1 * h.client.median())
                ),
            ],
        );
        row(
            &mut t,
            &[
                "5. Health check latency, ms: p99".into(),
                format!("{:.2}", h.healthcheck.percentile(99.0)),
                format!("{:.2}", h.client.percentile(99.0)),
                format!(
                    "{:.3}",
                    h.healthcheck.percentile(99.0) / h.client.percentile(99.0)
                ),
                "–".into(),
            ],
        );
        row(
            &mut t,
            &[
                "5. Starting any process (`/bin/true`), ms: median".into(),
                format!("{:.2}", h.spawn.median()),
                format!("{:.2}", h.client.median()),
                format!("{:.3}", h.spawn.median() / h.client.median()),
                "the floor of any check run as a command".into(),
            ],
        );
        row(
            &mut t,
            &[
                "5. `GET /health` on loopback, ms: median / p99".into(),
                format!("{:.2} / {:.2}", h.http.median(), h.http.percentile(99.0)),
                "–".into(),
                "–".into(),
                "–".into(),
            ],
        );
    }
    if let Some(f) = &r.footprint {
        let rss = f.rss_kib.median() / 1024.0;
        row(
            &mut t,
            &[
                "6. galera-init RSS supervising an idle server, MiB".into(),
                format!(
                    "{} (anonymous {}; {} threads)",
                    Series(f.rss_kib.0.iter().map(|k| k / 1024.0).collect()).show(2),
                    Series(f.anon_kib.0.iter().map(|k| k / 1024.0).collect()).show(2),
                    f.threads.median()
                ),
                "–".into(),
                "–".into(),
                format!("≤ 4 MiB: {}", yes(rss <= 4.0)),
            ],
        );
        let mib = f.binary as f64 / (1024.0 * 1024.0);
        row(
            &mut t,
            &[
                "6. Stripped release binary, MiB".into(),
                format!("{mib:.2}"),
                "–".into(),
                "–".into(),
                format!("≤ 6 MiB: {}", yes(mib <= 6.0)),
            ],
        );
        if let Some((img, base)) = f.image {
            row(
                &mut t,
                &[
                    "6. Image, MB".into(),
                    format!("{:.0}", img as f64 / 1e6),
                    format!("its base: {:.0}", base as f64 / 1e6),
                    format!("{:.2}", img as f64 / base as f64),
                    "–".into(),
                ],
            );
        }
    }
    if r.svg.is_some() {
        let _ = writeln!(
            t,
            "\n## Cold-start timeline\n\n![cold-start timeline](cold-start.svg)\n"
        );
    }
    let _ = writeln!(
        t,
        "\n## How to rerun\n\n\
         As root on Debian 12 (it installs what it needs, like `scripts/test.sh`):\n\n\
         ```\nscripts/bench                          # every figure, 3 runs each\n\
         scripts/bench --runs 5 --only cold,outage\n\
         scripts/bench --image galera-init:local --base galera-init-base:bookworm   # image size too\n```\n\n\
         What each figure does is described in `benches/cluster/figures.rs`."
    );
    t
}

const BEGIN: &str = "<!-- scripts/bench writes from here -->";
const END: &str = "<!-- scripts/bench writes up to here -->";

/// `doc` with the part between the markers replaced by `generated` (the whole of `doc`
/// when it has no markers): what is written around them by hand stays.
pub fn splice(doc: &str, generated: &str) -> String {
    let block = format!("{BEGIN}\n{generated}{END}\n");
    match (doc.find(BEGIN), doc.find(END)) {
        (Some(b), Some(e)) if b < e => {
            format!(
                "{}{block}{}",
                &doc[..b],
                doc[e + END.len()..].trim_start_matches('\n')
            )
        }
        _ => block,
    }
}
