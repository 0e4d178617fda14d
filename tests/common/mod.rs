//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod daemon;
pub mod netns;

use std::path::{Path, PathBuf};

use iotwatch::capture::Timeline;
use iotwatch::output::{Report, build_report, write_json_report};
use iotwatch::pipeline::{self, Config};
use iotwatch::proto::Registry;

/// `../shared` next to the repository, if this checkout has it.
pub fn shared() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/captures");
    if p.join("MANIFEST.tsv").is_file() {
        Some(p)
    } else {
        eprintln!(
            "SKIPPED: ../shared/captures is absent (the shared test corpus is not part of this repository)"
        );
        None
    }
}

/// A python3 that has scapy (for ../shared/tools/gen-mirai-scan.py); `None`,
/// with a message saying what to install, when there is none.
pub fn scapy_python() -> Option<&'static str> {
    let py = ["/usr/bin/python3", "python3"].into_iter().find(|p| {
        std::process::Command::new(p)
            .args(["-c", "import scapy"])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if py.is_none() {
        eprintln!("SKIPPED: no python3 with scapy (apt-get install python3-scapy)");
    }
    py
}

/// Writes a Mirai-like scan of `packets` packets to `out` with the shared
/// generator. `None` (with a message) when scapy is missing.
pub fn mirai_scan(shared: &Path, out: &Path, packets: u32, seed: u32) -> Option<PathBuf> {
    let py = scapy_python()?;
    let st = std::process::Command::new(py)
        .arg(shared.join("../tools/gen-mirai-scan.py"))
        .args([
            "--packets",
            &packets.to_string(),
            "--seed",
            &seed.to_string(),
        ])
        .arg(out)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    Some(out.to_path_buf())
}

/// Runs the library pipeline as `iotwatch analyze` does.
pub fn analyze(paths: &[&Path], threads: usize) -> Result<Report, iotwatch::capture::CaptureError> {
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    let mut tl = Timeline::open(&names)?;
    let config = Config {
        threads,
        ..Config::default()
    };
    let a = pipeline::run(&mut tl, config, Registry::builtin(), &mut |_| {})?;
    Ok(build_report(a, tl.files(), &Default::default()))
}

/// As [`analyze`], but the file is read as a stream (as standard input or
/// gzip are), not through a memory map, so frames are copied between threads.
pub fn analyze_unmapped(path: &Path, threads: usize) -> Report {
    let name = path.display().to_string();
    let file = std::fs::File::open(path).unwrap();
    let cf = iotwatch::capture::CaptureFile::from_reader(&name, Box::new(file)).unwrap();
    assert!(cf.mapping().is_none());
    let mut tl = Timeline::from_files(vec![cf]);
    let config = Config {
        threads,
        ..Config::default()
    };
    let a = pipeline::run(&mut tl, config, Registry::builtin(), &mut |_| {}).unwrap();
    build_report(a, tl.files(), &Default::default())
}

/// The JSON report as `iotwatch analyze --json` streams it.
pub fn analyze_json(paths: &[&Path], threads: usize) -> String {
    analyze_json_with(
        paths,
        Config {
            threads,
            ..Config::default()
        },
    )
}

/// As [`analyze_json`], with a pipeline configured otherwise.
pub fn analyze_json_with(paths: &[&Path], config: Config) -> String {
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    let mut tl = Timeline::open(&names).unwrap();
    let threads = config.threads;
    let a = pipeline::run(&mut tl, config, Registry::builtin(), &mut |_| {}).unwrap();
    let mut out = Vec::new();
    drop(write_json_report(a, tl.files(), &Default::default(), threads, &mut out).unwrap());
    String::from_utf8(out).unwrap()
}

pub fn json(r: &Report) -> String {
    serde_json::to_string_pretty(r).unwrap()
}

/// Writes a little-endian microsecond pcap.
pub fn write_pcap(path: &Path, linktype: u32, frames: &[(u64, Vec<u8>)]) {
    let mut v = Vec::new();
    v.extend_from_slice(&0xA1B2_C3D4u32.to_le_bytes());
    v.extend_from_slice(&[2, 0, 4, 0]);
    v.extend_from_slice(&[0; 8]);
    v.extend_from_slice(&65535u32.to_le_bytes());
    v.extend_from_slice(&linktype.to_le_bytes());
    for (ts_us, data) in frames {
        v.extend_from_slice(&((ts_us / 1_000_000) as u32).to_le_bytes());
        v.extend_from_slice(&((ts_us % 1_000_000) as u32).to_le_bytes());
        v.extend_from_slice(&(data.len() as u32).to_le_bytes());
        v.extend_from_slice(&(data.len() as u32).to_le_bytes());
        v.extend_from_slice(data);
    }
    std::fs::write(path, v).unwrap();
}

/// The manifest rows: (relative path, packets, link type).
pub fn manifest(dir: &Path) -> Vec<(String, u64, String)> {
    std::fs::read_to_string(dir.join("MANIFEST.tsv"))
        .unwrap()
        .lines()
        .skip(1)
        .filter_map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            Some((
                c.first()?.to_string(),
                c.get(6)?.parse().ok()?,
                c.get(7)?.to_string(),
            ))
        })
        .collect()
}

/// The report's events of one kind.
pub fn scans(r: &Report) -> Vec<&iotwatch::detect::scan::ScanEvent> {
    r.events
        .iter()
        .filter_map(|e| match &e.kind {
            iotwatch::event::EventKind::Scan(s) => Some(s),
            _ => None,
        })
        .collect()
}

pub fn logins(r: &Report) -> Vec<&iotwatch::detect::credentials::LoginEvent> {
    r.events
        .iter()
        .filter_map(|e| match &e.kind {
            iotwatch::event::EventKind::Login(l) => Some(l),
            _ => None,
        })
        .collect()
}

pub fn bruteforces(r: &Report) -> Vec<&iotwatch::detect::credentials::BruteforceEvent> {
    r.events
        .iter()
        .filter_map(|e| match &e.kind {
            iotwatch::event::EventKind::Bruteforce(b) => Some(b),
            _ => None,
        })
        .collect()
}
