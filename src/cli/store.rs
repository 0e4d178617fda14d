//! `iotwatch devices` and `iotwatch events`: read the monitor's store, for
//! people (a table, one line per event) and scripts (`--json`).

use std::io::{self, Write};
use std::path::PathBuf;

use anyhow::{Result, anyhow};
use clap::Args;
use serde_json::Value;

use crate::store::Reader;

#[derive(Debug, Args)]
pub struct DevicesArgs {
    /// The monitor's store [default: as `monitor --db`]
    #[arg(long, value_name = "FILE")]
    pub db: Option<PathBuf>,
    /// Print a JSON array of device objects (as in the analyze report)
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// The monitor's store [default: as `monitor --db`]
    #[arg(long, value_name = "FILE")]
    pub db: Option<PathBuf>,
    /// Only events from this time on: RFC 3339, a date, or an age such as 30m, 2h, 7d
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only events of this kind (login, scan, bruteforce, end_of_support, new_device)
    #[arg(long, value_name = "KIND")]
    pub kind: Option<String>,
    /// Print JSON lines (the event objects of the events file)
    #[arg(long)]
    pub json: bool,
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("-")
}

pub fn devices(args: DevicesArgs) -> Result<()> {
    let db = args.db.unwrap_or_else(crate::store::default_path);
    let devices = Reader::open(&db)?.devices()?;
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    if args.json {
        serde_json::to_writer_pretty(&mut out, &devices)?;
        writeln!(out)?;
        return Ok(out.flush()?);
    }
    writeln!(
        out,
        "{:<17}  {:<15}  {:<16}  {:<11}  {:<18}  {:<9}  LAST SEEN",
        "MAC", "IP", "VENDOR", "TYPE", "MODEL / OS", "SUPPORT"
    )?;
    for d in &devices {
        let ip = d["ips"].as_array().and_then(|a| a.first()).map_or("-", s);
        let model = d["model"].as_str().or(d["os"].as_str()).unwrap_or("-");
        writeln!(
            out,
            "{:<17}  {:<15}  {:<16.16}  {:<11}  {:<18.18}  {:<9}  {}",
            d["mac"].as_str().unwrap_or("-"),
            ip,
            s(&d["vendor"]),
            s(&d["type"]),
            model,
            s(&d["support"]["status"]),
            s(&d["last_seen"]).get(..19).unwrap_or("-"),
        )?;
    }
    writeln!(out, "{} devices", devices.len())?;
    Ok(out.flush()?)
}

pub fn events(args: EventsArgs) -> Result<()> {
    let since = args.since.as_deref().map(parse_since).transpose()?;
    let db = args.db.unwrap_or_else(crate::store::default_path);
    let events = Reader::open(&db)?.events(since, args.kind.as_deref())?;
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    for e in &events {
        if args.json {
            writeln!(out, "{e}")?;
            continue;
        }
        let mut rest = e.clone();
        if let Some(o) = rest.as_object_mut() {
            for k in ["ts", "severity", "kind"] {
                o.remove(k);
            }
        }
        writeln!(
            out,
            "{}  {:<8}  {:<14}  {rest}",
            s(&e["ts"]),
            s(&e["severity"]),
            s(&e["kind"])
        )?;
    }
    Ok(out.flush()?)
}

/// `2026-11-26T10:00:00Z`, `2026-11-26`, or an age: `90s`, `30m`, `2h`, `7d`.
pub fn parse_since(t: &str) -> Result<crate::capture::Nanos> {
    let bad =
        || anyhow!("--since {t}: not a time (RFC 3339, YYYY-MM-DD, or an age such as 30m, 2h, 7d)");
    if let Ok(ts) = chrono::DateTime::parse_from_rfc3339(t) {
        return ts
            .timestamp_nanos_opt()
            .map(|n| n.max(0) as u64)
            .ok_or_else(bad);
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        let n = d
            .and_hms_opt(0, 0, 0)
            .ok_or_else(bad)?
            .and_utc()
            .timestamp_nanos_opt();
        return n.map(|n| n.max(0) as u64).ok_or_else(bad);
    }
    let (num, unit) = t.split_at(t.len().saturating_sub(1));
    let n: u64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(bad()),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Ok(now.saturating_sub(secs) * 1_000_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_times_dates_and_ages() {
        assert_eq!(
            parse_since("2024-06-01T00:00:00Z").unwrap(),
            1_717_200_000_000_000_000
        );
        assert_eq!(
            parse_since("2024-06-01").unwrap(),
            1_717_200_000_000_000_000
        );
        let hour_ago = parse_since("1h").unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        assert!((now - hour_ago).abs_diff(3_600_000_000_000) < 5_000_000_000);
        assert!(parse_since("yesterday").is_err());
        assert!(parse_since("5y").is_err());
    }
}
