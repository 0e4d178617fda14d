//! `iotwatch monitor` run in a test's network namespace, with its files in
//! a directory of the test's.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::netns::{Netns, sh};

pub const BIN: &str = env!("CARGO_BIN_EXE_iotwatch");

/// A monitor running in a namespace, with its files in `dir`.
pub struct Daemon {
    child: Child,
    /// Stopped by the test (otherwise killed when dropped, e.g. on a failure).
    stopped: bool,
    ns: String,
    dir: PathBuf,
    tag: String,
}

impl Daemon {
    pub fn start(ns: &str, iface: &str, dir: &Path, tag: &str) -> Daemon {
        let cmd = format!(
            "exec ip netns exec {ns} {BIN} monitor -i {iface} --db {d}/iotwatch.db --events {d}/events-{tag}.jsonl --control {d}/control.sock --metrics 127.0.0.1:9469 --no-syslog 2>{d}/stderr-{tag}",
            d = dir.display()
        );
        let child = Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let d = Daemon {
            child,
            stopped: false,
            ns: ns.to_string(),
            dir: dir.to_path_buf(),
            tag: tag.to_string(),
        };
        let end = Instant::now() + Duration::from_secs(10);
        while !d.dir.join("control.sock").exists() {
            assert!(
                Instant::now() < end,
                "monitor did not start: {}",
                d.stderr()
            );
            sleep(Duration::from_millis(50));
        }
        d
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join(format!("stderr-{}", self.tag))).unwrap_or_default()
    }

    pub fn events(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.join(format!("events-{}.jsonl", self.tag)))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("each line is one JSON object"))
            .collect()
    }

    pub fn metrics(&self) -> String {
        let o = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns,
                "curl",
                "-s",
                "127.0.0.1:9469/metrics",
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    pub fn metric(&self, line_start: &str) -> f64 {
        let m = self.metrics();
        m.lines()
            .find(|l| l.starts_with(line_start))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {line_start} in\n{m}"))
    }

    /// Sends `signal` and waits; returns how long the exit took.
    pub fn stop(mut self, signal: &str) -> (Duration, bool) {
        let t = Instant::now();
        sh(&format!("kill -{signal} {}", self.child.id()));
        let status = self.child.wait().unwrap();
        self.stopped = true;
        (t.elapsed(), status.success())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if !self.stopped {
            sh(&format!("kill -KILL {}", self.child.id()));
            let _ = self.child.wait();
        }
    }
}

pub fn devices(db: &Path) -> Vec<Value> {
    let o = Command::new(BIN)
        .args(["devices", "--json", "--db"])
        .arg(db)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

pub fn replay(ns: &Netns, iface: &str, pcap: &Path, rate: &str) -> u64 {
    let o = Command::new("ip")
        .args(["netns", "exec", &ns.target, "tcpreplay", "-q", "-i", iface])
        .args(rate.split_whitespace())
        .arg(pcap)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "tcpreplay {}: {text}{}",
        pcap.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    // "Actual: 92 packets (7748 bytes) sent in ..."
    text.split("Actual: ")
        .nth(1)
        .and_then(|t| t.split(' ').next()?.parse().ok())
        .unwrap_or(0)
}
