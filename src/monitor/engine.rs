//! The live pipeline: the same [`Worker`] as `analyze` (decode → flows →
//! analyzers → inventory → detectors), plus what a capture that never ends
//! needs: once a second, a `tick` turns what changed into events and device
//! updates for the outputs (events file, store, control socket).

use std::collections::VecDeque;
use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHashSet};

use crate::capture::{Frame, Nanos};
use crate::detect::credentials::bruteforce_events;
use crate::event::{Event, EventKind, NewDeviceEvent, Severity};
use crate::inventory::{Device, DeviceKey};
use crate::output::report::{DeviceReport, DeviceReporter, ReportOptions};
use crate::pipeline::{Config, Counters, Worker};
use crate::proto::Registry;

const SECOND: Nanos = 1_000_000_000;
/// A device whose only change is more traffic is re-reported this often.
const TRAFFIC_REFRESH: Nanos = 30 * SECOND;
/// Device updates per tick at most: a flood of new devices (thousands in a
/// second) is reported over several ticks, so no tick stalls the packets
/// queued behind it.
const MAX_UPDATES: usize = 1024;
/// Login events kept to find brute force in, and for how long.
const LOGIN_MEMORY: usize = 10_000;
const LOGIN_WINDOW: Nanos = 3600 * SECOND;

/// A device remembered from the store when the monitor starts.
pub struct KnownDevice {
    pub key: DeviceKey,
    pub device: Device,
    /// Its `end_of_support` event was already written.
    pub eos_reported: bool,
}

/// What a tick found.
#[derive(Default)]
pub struct Tick {
    pub events: Vec<Event>,
    pub devices: Vec<DeviceUpdate>,
}

/// A device that changed, with what the store needs.
pub struct DeviceUpdate {
    pub key: DeviceKey,
    pub report: DeviceReport,
    /// The report as JSON, made once for the store and the control socket.
    pub json: String,
    /// The raw evidence (signal, field, value), so a restart can put it back.
    pub evidence: Vec<(&'static str, &'static str, String)>,
    /// Packets and bytes since the last update (daily traffic totals).
    pub delta: (u64, u64),
    pub eos_reported: bool,
}

/// Remembered devices re-read per tick (with this run's signatures) when
/// the tick has room left after the devices that changed.
const MAX_STALE_UPDATES: usize = 128;

/// What of a device, when it changes, is worth an update.
type Shape = (usize, usize, usize, [bool; 4]);

fn shape(d: &Device) -> Shape {
    (
        d.evidence.len(),
        d.ips.len(),
        d.services.len(),
        d.syns.map(|s| s.is_some()),
    )
}

/// Per device: what the last update showed.
#[derive(Default)]
struct Seen {
    shape: Shape,
    /// Restored from the store and not yet reported by this run.
    stale: bool,
    packets: u64,
    bytes: u64,
    reported_at: Nanos,
    eos_reported: bool,
    in_store: bool,
}

pub struct Engine {
    worker: Worker,
    config: Arc<Config>,
    reporter: DeviceReporter,
    seen: FxHashMap<DeviceKey, Seen>,
    logins: VecDeque<Event>,
    new_logins: bool,
    /// Server addresses that were offered a default credential.
    exposed: FxHashSet<std::net::IpAddr>,
    scans_reported: FxHashSet<(String, Nanos, &'static str)>,
    brute_reported: FxHashSet<(String, &'static str)>,
}

impl Engine {
    pub fn new(config: Config, opts: ReportOptions, known: Vec<KnownDevice>) -> Engine {
        let config = Arc::new(config);
        let mut worker = Worker::new(
            config.clone(),
            Arc::new(Registry::builtin()),
            crate::flow::ALL_BUCKETS,
        );
        let mut seen = FxHashMap::default();
        for k in known {
            seen.insert(
                k.key,
                Seen {
                    packets: k.device.packets,
                    bytes: k.device.bytes,
                    eos_reported: k.eos_reported,
                    in_store: true,
                    stale: true,
                    shape: Shape::default(),
                    reported_at: 0,
                },
            );
            worker.inventory_mut().restore(k.key, k.device);
        }
        for (key, d) in worker.inventory_mut().devices_mut() {
            if let Some(s) = seen.get_mut(&key) {
                s.shape = shape(d);
            }
        }
        Engine {
            worker,
            config,
            reporter: DeviceReporter::new(opts),
            seen,
            logins: VecDeque::new(),
            new_logins: false,
            exposed: FxHashSet::default(),
            scans_reported: FxHashSet::default(),
            brute_reported: FxHashSet::default(),
        }
    }

    #[inline]
    pub fn frame(&mut self, frame: &Frame<'_>) {
        self.worker.frame(frame);
    }

    pub fn counters(&self) -> Counters {
        self.worker.counters()
    }

    pub fn open_flows(&self) -> usize {
        self.worker.open_flows()
    }

    /// The device table is full: devices not seen before are left out.
    pub fn devices_full(&self) -> bool {
        self.worker.inventory().over_cap
    }

    /// Devices reported so far (this run and remembered).
    pub fn known_devices(&self) -> usize {
        self.seen.len()
    }

    /// What changed since the last tick, at wall-clock time `now`.
    pub fn tick(&mut self, now: Nanos) -> Tick {
        self.worker.expire(now);
        let mut tick = Tick::default();
        for e in self.worker.take_events() {
            if let EventKind::Login(l) = &e.kind {
                if l.default_credential
                    && let Ok(ip) = l.server.ip.parse()
                {
                    self.exposed.insert(ip);
                }
                self.logins.push_back(e.clone());
                self.new_logins = true;
            }
            tick.events.push(e);
        }
        self.scan_events(&mut tick.events);
        self.bruteforce_events(now, &mut tick.events);
        self.device_updates(now, &mut tick);
        tick.events.sort_by_key(|e| e.ts);
        tick
    }

    /// Scan episodes that reached a verdict since the last tick: reported
    /// once, when first seen (the episode may grow after). An episode is
    /// remembered as long as the detector holds it, so a jump in time (the
    /// end of a replay) does not report it again.
    fn scan_events(&mut self, out: &mut Vec<Event>) {
        let mut current = FxHashSet::default();
        for e in self.worker.scans().events(&self.config.home) {
            let EventKind::Scan(s) = &e.kind else {
                continue;
            };
            let key = (s.source.ip.clone(), s.first_ts, s.direction);
            if !self.scans_reported.contains(&key) {
                out.push(e);
            }
            current.insert(key);
        }
        self.scans_reported = current;
    }

    fn bruteforce_events(&mut self, now: Nanos, out: &mut Vec<Event>) {
        while self.logins.len() > LOGIN_MEMORY
            || self
                .logins
                .front()
                .is_some_and(|e| now.saturating_sub(e.ts) > LOGIN_WINDOW)
        {
            self.logins.pop_front();
        }
        if !std::mem::take(&mut self.new_logins) {
            return;
        }
        // Reported once while its logins are in the window.
        let mut current = FxHashSet::default();
        for e in bruteforce_events(self.logins.make_contiguous(), &self.config.home) {
            let EventKind::Bruteforce(b) = &e.kind else {
                continue;
            };
            let key = (b.source.ip.clone(), b.protocol);
            if !self.brute_reported.contains(&key) {
                out.push(e);
            }
            current.insert(key);
        }
        self.brute_reported = current;
    }

    /// Devices that are new or showed something new; the others only every
    /// [`TRAFFIC_REFRESH`] if their traffic grew.
    fn device_updates(&mut self, now: Nanos, tick: &mut Tick) {
        let Engine {
            worker,
            reporter,
            seen,
            exposed,
            ..
        } = self;
        // First what is new or showed something new, then (with the room
        // left) traffic refreshes and remembered devices not yet re-read.
        let mut stale_budget = MAX_STALE_UPDATES;
        for urgent in [true, false] {
            for (key, d) in worker.inventory_mut().devices_mut() {
                if tick.devices.len() >= MAX_UPDATES {
                    break;
                }
                let s = seen.entry(key).or_default();
                let new = !s.in_store && s.reported_at == 0;
                let changed = new || shape(d) != s.shape;
                if urgent != changed {
                    continue;
                }
                if !changed {
                    let due = d.packets != s.packets
                        && now.saturating_sub(s.reported_at) >= TRAFFIC_REFRESH;
                    if !(due || s.stale && stale_budget > 0) {
                        continue;
                    }
                    if !due {
                        stale_budget -= 1;
                    }
                }
                let is_exposed = d.ips.iter().any(|ip| exposed.contains(ip));
                tick.devices.push(update(
                    reporter,
                    key,
                    d,
                    s,
                    is_exposed,
                    new,
                    now,
                    &mut tick.events,
                ));
            }
        }
        tick.devices.sort_by_key(|u| u.key);
    }
}

/// Reports one device (and its `new_device` and `end_of_support` events).
#[allow(clippy::too_many_arguments)]
fn update(
    reporter: &mut DeviceReporter,
    key: DeviceKey,
    d: &mut Device,
    s: &mut Seen,
    exposed: bool,
    new: bool,
    now: Nanos,
    events: &mut Vec<Event>,
) -> DeviceUpdate {
    let (report, eos) = reporter.report(key, d, exposed);
    if new {
        events.push(Event {
            ts: d.first_seen,
            severity: Severity::Info,
            kind: EventKind::NewDevice(NewDeviceEvent {
                mac: report.mac.clone(),
                ips: report.ips.clone(),
                vendor: report.vendor.clone(),
                hostname: report.hostname.clone(),
                kind: report.kind.clone(),
                model: report.model.clone(),
            }),
        });
    }
    if let Some(e) = eos
        && !s.eos_reported
    {
        s.eos_reported = true;
        events.push(e);
    }
    let delta = (
        d.packets.saturating_sub(s.packets),
        d.bytes.saturating_sub(s.bytes),
    );
    s.shape = shape(d);
    s.stale = false;
    s.packets = d.packets;
    s.bytes = d.bytes;
    s.reported_at = now.max(1);
    s.in_store = true;
    DeviceUpdate {
        key,
        json: serde_json::to_string(&report).unwrap_or_default(),
        report,
        evidence: d
            .evidence
            .iter()
            .map(|((sig, field), v)| (*sig, *field, v.clone()))
            .collect(),
        delta,
        eos_reported: s.eos_reported,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::LinkType;

    fn udp(mac: [u8; 6], ip: [u8; 4]) -> Vec<u8> {
        let mut v = Vec::new();
        etherparse::PacketBuilder::ethernet2(mac, [0xff; 6])
            .ipv4(ip, [192, 168, 1, 255], 64)
            .udp(5000, 9)
            .write(&mut v, b"x")
            .unwrap();
        v
    }

    fn feed(e: &mut Engine, ts: Nanos, data: &[u8]) {
        e.frame(&Frame {
            ts,
            link: LinkType::Ethernet,
            data,
            orig_len: data.len() as u32,
        });
    }

    fn new_devices(t: &Tick) -> usize {
        t.events
            .iter()
            .filter(|e| matches!(e.kind, EventKind::NewDevice(_)))
            .count()
    }

    const T0: Nanos = 1_750_000_000 * SECOND;

    #[test]
    fn a_device_is_new_once_and_not_after_a_restart() {
        let plug = udp([0x50, 0xc7, 0xbf, 1, 2, 3], [192, 168, 1, 20]);
        let mut e = Engine::new(Config::default(), ReportOptions::default(), Vec::new());
        feed(&mut e, T0, &plug);
        let t = e.tick(T0 + SECOND);
        assert_eq!(new_devices(&t), 1);
        assert_eq!(t.devices.len(), 1);
        assert_eq!(t.devices[0].report.vendor.as_deref(), Some("TP-Link"));
        // More traffic, nothing new: no update until the refresh is due.
        feed(&mut e, T0 + 2 * SECOND, &plug);
        let t = e.tick(T0 + 3 * SECOND);
        assert_eq!((new_devices(&t), t.devices.len()), (0, 0));
        let t = e.tick(T0 + 40 * SECOND);
        assert_eq!(t.devices.len(), 1);
        assert_eq!(t.devices[0].delta.0, 1);

        // A restart with the device remembered.
        let mut d = Device::default();
        d.first_seen = T0;
        d.last_seen = T0;
        d.packets = 2;
        let known = vec![KnownDevice {
            key: DeviceKey::Mac([0x50, 0xc7, 0xbf, 1, 2, 3]),
            device: d,
            eos_reported: false,
        }];
        let mut e = Engine::new(Config::default(), ReportOptions::default(), known);
        feed(&mut e, T0 + 100 * SECOND, &plug);
        let t = e.tick(T0 + 101 * SECOND);
        assert_eq!(new_devices(&t), 0);
        assert_eq!(e.known_devices(), 1);
    }

    #[test]
    fn a_flood_of_devices_is_reported_over_several_ticks() {
        let mut e = Engine::new(Config::default(), ReportOptions::default(), Vec::new());
        for i in 0..2500u32 {
            let f = udp(
                [0x00, 0x1b, 0x44, 0, (i >> 8) as u8, i as u8],
                [10, 0, (i >> 8) as u8, i as u8],
            );
            feed(&mut e, T0, &f);
        }
        let sizes: Vec<usize> = (1..=4)
            .map(|s| e.tick(T0 + s * SECOND).devices.len())
            .collect();
        assert_eq!(sizes, [MAX_UPDATES, MAX_UPDATES, 2500 - 2 * MAX_UPDATES, 0]);
    }
}
