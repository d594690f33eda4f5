//! The benchmark: every speed figure of galera-init measured side by side with a baseline
//! in the same invocation, reported as ratios (absolute times on a shared two-core machine
//! vary from run to run; ratios of runs made together much less). Run it through
//! `scripts/bench`, which builds the release binary and writes docs/benchmarks.md and the
//! cold-start timeline (docs/cold-start.svg).
//!
//! ```text
//! scripts/bench [--runs N] [--only cold,join,outage,failover,lag,health,footprint]
//!               [--large-mib MIB] [--health-runs N] [--image TAG --base TAG]
//! ```

#[path = "../../tests/integration/lab.rs"]
mod lab;

mod figures;
mod nodes;
mod report;
mod stats;
mod timeline;

use std::path::PathBuf;

/// What to run, from the command line.
#[derive(Debug, Clone)]
pub struct Args {
    /// Runs of each figure (cold start, join, outage, failover).
    pub runs: usize,
    /// Which figures.
    pub only: Vec<String>,
    /// The large datadir of figure 2, MiB.
    pub large_mib: u64,
    /// Runs of each health check (figure 5).
    pub health_runs: usize,
    /// The image and its base (figure 6), when given.
    pub image: Option<(String, String)>,
    /// Where the report goes.
    pub out: PathBuf,
    /// Where the timeline goes.
    pub svg: PathBuf,
}

const FIGURES: [&str; 7] = [
    "cold",
    "join",
    "outage",
    "failover",
    "lag",
    "health",
    "footprint",
];

fn parse(argv: &[String]) -> Result<Args, String> {
    let mut a = Args {
        runs: 3,
        only: FIGURES.iter().map(|s| s.to_string()).collect(),
        large_mib: 1024,
        health_runs: 200,
        image: None,
        out: "docs/benchmarks.md".into(),
        svg: "docs/cold-start.svg".into(),
    };
    let mut image = None;
    let mut base = None;
    let mut it = argv.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match arg.as_str() {
            // cargo bench passes --bench to every bench binary.
            "--bench" => {}
            "--runs" => {
                a.runs = value("--runs")?
                    .parse()
                    .map_err(|e| format!("--runs: {e}"))?
            }
            "--only" => {
                a.only = value("--only")?.split(',').map(str::to_string).collect();
                if let Some(bad) = a.only.iter().find(|f| !FIGURES.contains(&f.as_str())) {
                    return Err(format!("--only: unknown figure {bad} (one of {FIGURES:?})"));
                }
            }
            "--large-mib" => {
                a.large_mib = value("--large-mib")?
                    .parse()
                    .map_err(|e| format!("--large-mib: {e}"))?
            }
            "--health-runs" => {
                a.health_runs = value("--health-runs")?
                    .parse()
                    .map_err(|e| format!("--health-runs: {e}"))?
            }
            "--image" => image = Some(value("--image")?),
            "--base" => base = Some(value("--base")?),
            "--out" => a.out = value("--out")?.into(),
            "--svg" => a.svg = value("--svg")?.into(),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    a.image = match (image, base) {
        (Some(i), Some(b)) => Some((i, b)),
        (None, None) => None,
        _ => return Err("--image and --base go together".into()),
    };
    Ok(a)
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().map(String::as_str) == Some("time") {
        std::process::exit(figures::time_helper(&argv[1..]));
    }
    let args = match parse(&argv) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bench: {e}");
            std::process::exit(2);
        }
    };
    lab::require_lab();
    let results = report::run(&args);
    let text = report::markdown(&args, &results);
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir).unwrap();
    }
    std::fs::write(
        &args.out,
        report::splice(
            &std::fs::read_to_string(&args.out).unwrap_or_default(),
            &text,
        ),
    )
    .unwrap();
    if let Some(svg) = &results.svg {
        std::fs::write(&args.svg, svg).unwrap();
    }
    println!("{text}");
    eprintln!("wrote {}", args.out.display());
}
