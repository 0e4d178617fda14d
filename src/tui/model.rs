//! What the TUI shows, built from the control protocol's messages (the same
//! whatever the source: a capture replayed in-process, a live interface, or
//! a running monitor). Everything a frame needs is indexed as messages
//! arrive, so drawing never scans all devices or events.

use std::collections::VecDeque;
use std::sync::Arc;

use rustc_hash::FxHashMap as HashMap;
use serde_json::Value;

/// Events kept for the log (older ones drop off).
pub const MAX_EVENTS: usize = 100_000;
/// Samples kept for sparklines (one a second).
const HISTORY: usize = 120;

/// What is wrong with a device, as badges.
pub mod badge {
    pub const DEFAULT_CREDS: u8 = 1;
    pub const SCANNING: u8 = 2;
    pub const BRUTE_FORCED: u8 = 4;
    pub const OUT_OF_SUPPORT: u8 = 8;
    pub const NEW: u8 = 16;
}

pub struct Device {
    /// MAC, or the IP for devices without one.
    pub key: String,
    pub name: String,
    /// `name` in lower case then the key: the default sort, made once.
    pub sort_name: String,
    pub vendor: String,
    pub kind: String,
    pub ip: String,
    pub ips: Vec<String>,
    pub mac: String,
    pub last_seen: String,
    pub bytes: u64,
    pub packets: u64,
    /// Badges from the device itself (support, default credentials seen).
    own: u8,
    /// Packets per update, for the detail sparkline.
    pub traffic: VecDeque<u64>,
    pub json: Value,
}

pub struct EventRow {
    pub ts: String,
    pub severity: u8,
    pub kind: String,
    pub line: String,
    /// The object as received, parsed again only for its detail view.
    pub raw: Arc<str>,
}

#[derive(Default)]
pub struct Stats {
    pub source: String,
    pub packets: u64,
    pub pps: u64,
    pub drops: u64,
    pub flows: u64,
    pub devices: u64,
    pub uptime: u64,
    pub state: String,
}

#[derive(Default)]
pub struct Model {
    pub devices: Vec<Device>,
    by_key: HashMap<String, usize>,
    pub events: VecDeque<EventRow>,
    /// Events dropped off the front (for stable indexes in views).
    pub events_dropped: u64,
    /// Badges by IP and by MAC, from events (logins, scans, brute force).
    flags: HashMap<String, u8>,
    /// Failed logins per server IP (five make "being brute-forced").
    failures: HashMap<String, u32>,
    pub stats: Stats,
    pub throughput: VecDeque<u64>,
    /// "connected", "disconnected: …", from the source.
    pub status: String,
    /// Bumped whenever devices or their badges change (the device order
    /// is redone then).
    pub devices_generation: u64,
    /// Bumped whenever an event arrives.
    pub generation: u64,
    /// Positions (counted from the first event ever) of scan and login
    /// events, oldest first, kept as events arrive.
    pub scans: VecDeque<u64>,
    pub logins: VecDeque<u64>,
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

pub fn severity_rank(s: &str) -> u8 {
    match s {
        "critical" => 4,
        "high" => 3,
        "medium" => 2,
        "low" => 1,
        _ => 0,
    }
}

pub const SEVERITIES: [&str; 5] = ["info", "low", "medium", "high", "critical"];

impl Model {
    /// Applies one control-protocol message (a JSON line).
    pub fn apply(&mut self, line: &str) {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            return;
        };
        match v["type"].as_str() {
            Some("snapshot") => {
                self.devices.clear();
                self.by_key.clear();
                self.events.clear();
                self.flags.clear();
                self.failures.clear();
                self.scans.clear();
                self.logins.clear();
                self.events_dropped = 0;
                if let Some(evs) = v["events"].as_array() {
                    for e in evs {
                        self.event(e, Arc::from(e.to_string()));
                    }
                }
                if let Some(ds) = v["devices"].as_array() {
                    for d in ds {
                        self.upsert_device(d.clone());
                    }
                }
                self.stats(&v["stats"]);
                self.generation += 1;
                self.devices_generation += 1;
            }
            Some("device") => self.upsert_device(v["device"].clone()),
            Some("event") => {
                let raw: Arc<str> = Arc::from(v["event"].to_string());
                self.event(&v["event"], raw);
            }
            Some("stats") => self.stats(&v["stats"]),
            Some("status") => self.status = text(&v["status"]),
            _ => {}
        }
    }

    fn stats(&mut self, s: &Value) {
        let n = |k: &str| s[k].as_u64().unwrap_or(0);
        self.stats = Stats {
            source: text(&s["source"]),
            packets: n("packets"),
            pps: n("packets_per_second"),
            drops: n("kernel_dropped") + n("interface_dropped") + n("queue_dropped"),
            flows: n("flows"),
            devices: n("devices"),
            uptime: n("uptime_seconds"),
            state: text(&s["state"]),
        };
        if self.throughput.len() >= HISTORY {
            self.throughput.pop_front();
        }
        self.throughput.push_back(self.stats.pps);
    }

    fn upsert_device(&mut self, d: Value) {
        let mac = text(&d["mac"]);
        let ips: Vec<String> = d["ips"]
            .as_array()
            .map(|a| a.iter().map(text).collect())
            .unwrap_or_default();
        let ip = ips.first().cloned().unwrap_or_default();
        let key = if mac.is_empty() {
            ip.clone()
        } else {
            mac.clone()
        };
        if key.is_empty() {
            return;
        }
        let name = [&d["hostname"], &d["model"]]
            .into_iter()
            .map(text)
            .find(|s| !s.is_empty())
            .unwrap_or_default();
        let mut own = 0;
        if d["support"]["status"] == "ended" {
            own |= badge::OUT_OF_SUPPORT;
        }
        if d["code_of_practice"]["default_credentials_seen"] == true {
            own |= badge::DEFAULT_CREDS;
        }
        let packets = d["packets"].as_u64().unwrap_or(0);
        let row = Device {
            key: key.clone(),
            sort_name: name.to_lowercase() + &key,
            name,
            vendor: text(&d["vendor"]),
            kind: text(&d["type"]),
            ip,
            ips,
            mac,
            last_seen: text(&d["last_seen"]),
            bytes: d["bytes"].as_u64().unwrap_or(0),
            packets,
            own,
            traffic: VecDeque::new(),
            json: d,
        };
        match self.by_key.get(&key) {
            Some(&i) => {
                let old = &mut self.devices[i];
                let mut traffic = std::mem::take(&mut old.traffic);
                if traffic.len() >= HISTORY {
                    traffic.pop_front();
                }
                traffic.push_back(packets.saturating_sub(old.packets));
                *old = Device { traffic, ..row };
            }
            None => {
                self.by_key.insert(key, self.devices.len());
                self.devices.push(row);
            }
        }
        self.devices_generation += 1;
    }

    fn flag(&mut self, who: &Value, f: u8) {
        for k in ["ip", "mac"] {
            if let Some(v) = who[k].as_str() {
                self.flag_key(v, f);
            }
        }
    }

    fn flag_key(&mut self, k: &str, f: u8) {
        let old = self.flags.get(k).copied().unwrap_or(0);
        if old | f != old {
            self.flags.insert(k.to_string(), old | f);
            self.devices_generation += 1;
        }
    }

    fn event(&mut self, e: &Value, raw: Arc<str>) {
        let kind = text(&e["kind"]);
        match kind.as_str() {
            "login" => {
                if e["default_credential"] == true {
                    self.flag(&e["server"], badge::DEFAULT_CREDS);
                }
                if e["outcome"] == "failure" {
                    let server = text(&e["server"]["ip"]);
                    let n = self.failures.entry(server).or_default();
                    *n += 1;
                    if *n >= 5 {
                        self.flag(&e["server"], badge::BRUTE_FORCED);
                    }
                }
            }
            "scan" if e["direction"] == "outbound" => self.flag(&e["source"], badge::SCANNING),
            "bruteforce" => self.flag(&e["source"], badge::SCANNING),
            "new_device" => {
                if let Some(k) = e["mac"].as_str() {
                    self.flag_key(k, badge::NEW);
                }
            }
            _ => {}
        }
        if self.events.len() >= MAX_EVENTS {
            self.events.pop_front();
            self.events_dropped += 1;
            for list in [&mut self.scans, &mut self.logins] {
                while list.front().is_some_and(|&p| p < self.events_dropped) {
                    list.pop_front();
                }
            }
        }
        self.generation += 1;
        let pos = self.events_dropped + self.events.len() as u64;
        match kind.as_str() {
            "scan" => self.scans.push_back(pos),
            "login" => self.logins.push_back(pos),
            _ => {}
        }
        self.events.push_back(EventRow {
            ts: text(&e["ts"]).chars().take(19).collect(),
            severity: severity_rank(e["severity"].as_str().unwrap_or("")),
            line: event_line(&kind, e),
            kind,
            raw,
        });
    }

    /// The badges of a device: its own and those its addresses earned.
    pub fn badges(&self, d: &Device) -> u8 {
        let mut b = d.own;
        if let Some(f) = self.flags.get(&d.mac) {
            b |= f;
        }
        for ip in &d.ips {
            if let Some(f) = self.flags.get(ip) {
                b |= f;
            }
        }
        b
    }

    pub fn device(&self, key: &str) -> Option<&Device> {
        self.by_key.get(key).map(|&i| &self.devices[i])
    }

    /// Events about a device (by its MAC or addresses), newest first.
    pub fn device_events(&self, d: &Device, limit: usize) -> Vec<&EventRow> {
        let mut keys: Vec<String> = vec![d.mac.clone()];
        if let Some(ips) = d.json["ips"].as_array() {
            keys.extend(
                ips.iter()
                    .filter_map(|i| i.as_str().map(|s| format!("\"{s}\""))),
            );
        }
        let mac = format!("\"{}\"", d.mac);
        self.events
            .iter()
            .rev()
            .filter(|e| {
                (!d.mac.is_empty() && e.raw.contains(&mac))
                    || keys[1..].iter().any(|k| e.raw.contains(k.as_str()))
            })
            .take(limit)
            .collect()
    }
}

/// One line for the event log.
fn event_line(kind: &str, e: &Value) -> String {
    let t = |v: &Value| text(v);
    match kind {
        "login" => format!(
            "{} {} -> {}:{} user {} password {} {}{}",
            t(&e["protocol"]),
            t(&e["client"]["ip"]),
            t(&e["server"]["ip"]),
            t(&e["server"]["port"]),
            e["username"].as_str().unwrap_or("-"),
            e["password"]
                .as_str()
                .or(e["password_masked"].as_str())
                .unwrap_or("-"),
            t(&e["outcome"]),
            if e["default_credential"] == true {
                format!(" DEFAULT ({})", t(&e["credential_source"]))
            } else {
                String::new()
            }
        ),
        "scan" => format!(
            "{} {} scan from {}: {} SYNs to {} targets, ports {}{}",
            t(&e["verdict"]),
            t(&e["direction"]),
            t(&e["source"]["ip"]),
            t(&e["syns"]),
            t(&e["distinct_targets"]),
            e["ports"]
                .as_array()
                .map(|p| p.iter().take(5).map(t).collect::<Vec<_>>().join(","))
                .unwrap_or_default(),
            if e["mirai_fingerprint"] == true {
                format!(", {} Mirai fingerprints", t(&e["mirai_matches"]))
            } else {
                String::new()
            }
        ),
        "bruteforce" => format!(
            "{} brute force from {}: {} attempts, {} failed, {} targets",
            t(&e["protocol"]),
            t(&e["source"]["ip"]),
            t(&e["attempts"]),
            t(&e["failures"]),
            t(&e["targets"])
        ),
        "end_of_support" => format!(
            "{} {} {}: support {} {}",
            t(&e["mac"]),
            t(&e["vendor"]),
            e["model"].as_str().or(e["os"].as_str()).unwrap_or(""),
            t(&e["status"]),
            t(&e["end"])
        ),
        "new_device" => format!(
            "new device {} {} {}",
            t(&e["mac"]),
            e["ips"]
                .as_array()
                .map(|a| a.iter().map(t).collect::<Vec<_>>().join(" "))
                .unwrap_or_default(),
            [&e["vendor"], &e["type"], &e["model"], &e["hostname"]]
                .into_iter()
                .map(t)
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        ),
        other => other.to_string(),
    }
}
