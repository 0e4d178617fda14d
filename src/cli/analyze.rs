//! `iotwatch analyze`: offline analysis of capture files.

use std::io::{self, IsTerminal, Write};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use crate::capture::Timeline;
use crate::output::report::ReportOptions;
use crate::output::{build_report, summary::write_summary, write_json_report};
use crate::pipeline::{self, Config};
use crate::proto::Registry;

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// Capture file to read (repeatable; several files are one timeline; - is stdin)
    #[arg(short = 'r', long = "read", value_name = "FILE", required = true)]
    pub files: Vec<String>,

    /// Print one JSON object (the report contract of DESIGN.md) instead of a summary
    #[arg(long)]
    pub json: bool,

    /// Threads in all; 1 runs everything on the reading thread [default: number of cores]
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,

    /// A home network in CIDR form (repeatable) [default: RFC 1918, 100.64/10, link-local, fc00::/7]
    #[arg(long = "home-net", value_name = "CIDR")]
    pub home_net: Vec<String>,

    /// A directory of your own signatures laid out like signatures/
    /// (credentials/*.tsv, devices/*.tsv, vendors/*.tsv), read before the
    /// built-in ones; checked first, as `iotwatch signatures check DIR` does
    #[arg(long, value_name = "DIR")]
    pub signatures: Option<std::path::PathBuf>,

    /// "Today" for end-of-support status, as YYYY-MM-DD [default: the wall clock]
    #[arg(long = "as-of", value_name = "DATE")]
    pub as_of: Option<String>,

    /// Support ending within this many days is reported as ending-soon
    #[arg(long = "warn-days", value_name = "N", default_value_t = 90)]
    pub warn_days: i64,

    /// No progress bar, even on a terminal
    #[arg(short, long)]
    pub quiet: bool,
}

pub fn run(args: AnalyzeArgs) -> Result<()> {
    let threads = match args.threads {
        Some(0) => bail!("--threads must be at least 1"),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let home = super::home_nets(&args.home_net)?;
    if args.files.iter().filter(|f| *f == "-").count() > 1 {
        bail!("standard input (-) can be read only once");
    }
    if let Some(dir) = &args.signatures {
        super::install_signatures(dir)?;
    }
    let mut opts = ReportOptions {
        warn_days: args.warn_days,
        ..ReportOptions::default()
    };
    if let Some(d) = &args.as_of {
        opts.as_of = chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
            .map_err(|_| anyhow::anyhow!("--as-of {d}: not a date (YYYY-MM-DD)"))?;
    }
    let mut timeline = Timeline::open(&args.files)?;
    let config = Config {
        threads,
        home,
        ..Config::default()
    };
    let bar = progress_bar(&args);
    let mut tick = |read: u64| {
        if let Some(b) = &bar {
            b.set_position(read);
        }
    };
    let analysis = pipeline::run(&mut timeline, config, Registry::builtin(), &mut tick)?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    for w in timeline.files().iter().flat_map(|f| f.warnings()) {
        eprintln!("iotwatch: warning: {w}");
    }
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    if args.json {
        let spent = write_json_report(analysis, timeline.files(), &opts, threads, &mut out)
            .context("writing the report")?;
        // The process exits next: freeing the devices and findings one by
        // one would only delay that (6-10 ms of home-mix's run).
        std::mem::forget(spent);
        writeln!(out)?;
    } else {
        write_summary(&build_report(analysis, timeline.files(), &opts), &mut out)?;
    }
    out.flush()?;
    Ok(())
}

/// A bar over the total size of plain files when stderr is a terminal.
fn progress_bar(args: &AnalyzeArgs) -> Option<ProgressBar> {
    if args.quiet || !io::stderr().is_terminal() {
        return None;
    }
    let total: Option<u64> = args
        .files
        .iter()
        .map(|f| {
            let gz = f.ends_with(".gz");
            std::fs::metadata(f)
                .ok()
                .filter(|m| m.is_file() && !gz)
                .map(|m| m.len())
        })
        .sum();
    let bar = match total {
        Some(t) => ProgressBar::new(t).with_style(
            ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .expect("valid template"),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} {bytes} read, {bytes_per_sec}")
                .expect("valid template"),
        ),
    };
    bar.enable_steady_tick(Duration::from_millis(200));
    Some(bar)
}
