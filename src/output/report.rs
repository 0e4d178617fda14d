//! The `analyze` report: one JSON object whose field names are a contract
//! (DESIGN.md, "Report contract"). Ordering is deterministic, so the same
//! input gives the same bytes whatever the number of threads.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;

use serde::Serialize;

use crate::capture::{CaptureFile, LinkType};
use crate::detect::support::{Known, Support, assess};
use crate::event::{EndOfSupportEvent, Event, EventKind, Severity};
use crate::identify::{Evidence, Identifier};
use crate::inventory::{Device, DeviceKey, KeyChunk, key_chunks};
use crate::memo::{Lookup, SharedMemo};
use crate::output::pretty::Pretty;
use crate::pipeline::Analysis;
use crate::signatures::vendors::Vendor;
use crate::time::rfc3339;

#[derive(Debug, Serialize)]
pub struct Report {
    pub capture: CaptureSummary,
    pub devices: Vec<DeviceReport>,
    pub events: Vec<Event>,
}

#[derive(Debug, Serialize)]
pub struct CaptureSummary {
    pub files: Vec<String>,
    /// Packet records read, whatever their link type.
    pub packets: u64,
    /// Captured bytes of those records.
    pub bytes: u64,
    pub first_ts: Option<String>,
    pub last_ts: Option<String>,
    pub decode_errors: u64,
    pub link_types: Vec<String>,
    /// Records of link types not decoded.
    pub skipped_packets: u64,
    /// Records lost to damage in the file (truncation, malformed blocks).
    pub bad_records: u64,
    pub fragments: u64,
    /// Conversations: TCP/UDP/ICMP flows, and TCP attempts never answered.
    pub flows: u64,
    pub tcp_flows: u64,
    pub udp_flows: u64,
    pub unanswered_syns: u64,
    /// Flows evicted because the flow table was full (0 unless under pressure).
    pub flows_evicted: u64,
    pub warnings: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct DeviceReport {
    pub mac: Option<String>,
    pub ips: Vec<String>,
    pub vendor: Option<String>,
    pub hostname: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub model: Option<String>,
    pub firmware: Option<String>,
    pub os: Option<String>,
    /// How sure each field is, 0 to 1 (an addition to the contract).
    pub confidence: crate::identify::Fields<f64>,
    /// The MAC is locally administered (randomised): no vendor from it.
    pub randomised_mac: bool,
    pub services: Vec<String>,
    pub first_seen: String,
    pub last_seen: String,
    pub packets: u64,
    pub bytes: u64,
    /// Shared by the devices alike (see `DeviceReporter::assessed`).
    pub support: Arc<Support>,
    pub code_of_practice: CodeOfPractice,
    pub evidence: Vec<Evidence>,
}

/// Settings of the report that are not in the capture.
#[derive(Clone, Copy, Debug)]
pub struct ReportOptions {
    /// "Today" for end-of-support status (`--as-of`; default the wall clock).
    pub as_of: chrono::NaiveDate,
    /// A support end this close is `ending-soon` (`--warn-days`).
    pub warn_days: i64,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            as_of: chrono::Utc::now().date_naive(),
            warn_days: 90,
        }
    }
}

/// Device types whose lapse in updates matters most: they face the
/// Internet, hold recordings or open doors.
const EXPOSED_TYPES: &[&str] = &["camera", "dvr", "router", "nas", "hub", "lock"];

#[derive(Debug, Serialize)]
pub struct CodeOfPractice {
    pub default_credentials_seen: bool,
    pub disclosure: Option<Disclosure>,
    pub support_status: &'static str,
}

#[derive(Debug, Serialize)]
/// Borrowed from the vendor table, which lives for the whole run.
pub struct Disclosure {
    pub policy_url: Option<&'static str>,
    pub contact: Option<&'static str>,
    pub source: &'static str,
}

/// An `end_of_support` event: severity by how long ago support ended and
/// what the device is.
fn end_of_support_event(
    mac: &Option<String>,
    id: &crate::identify::Identity,
    s: &Support,
    ts: crate::capture::Nanos,
    opts: &ReportOptions,
) -> Event {
    let exposed = id
        .kind
        .as_deref()
        .is_some_and(|k| EXPOSED_TYPES.contains(&k));
    let years_ago = s
        .end
        .as_deref()
        .and_then(|e| chrono::NaiveDate::parse_from_str(e, "%Y-%m-%d").ok())
        .map_or(0, |e| (opts.as_of - e).num_days() / 365);
    let severity = match (s.status, exposed) {
        ("ending-soon", _) => Severity::Low,
        (_, true) if years_ago >= 2 => Severity::Critical,
        (_, true) => Severity::High,
        _ => Severity::Medium,
    };
    Event {
        ts,
        severity,
        kind: EventKind::EndOfSupport(EndOfSupportEvent {
            mac: mac.clone(),
            vendor: id.vendor.clone(),
            model: id.model.clone(),
            os: id.os.clone(),
            end: s.end.clone(),
            status: s.status,
            source: s.source.map(String::from),
            matched: s.matched.clone(),
        }),
    }
}

/// Vendor, model and OS: what a support assessment depends on.
type KnownKey = (Option<String>, Option<String>, Option<String>);

/// A [`KnownKey`] as looked up: (vendor, model, OS), borrowed.
#[derive(Hash)]
struct KnownRef<'a>(Option<&'a str>, Option<&'a str>, Option<&'a str>);

impl hashbrown::Equivalent<KnownKey> for KnownRef<'_> {
    fn equivalent(&self, k: &KnownKey) -> bool {
        (self.0, self.1, self.2) == (k.0.as_deref(), k.1.as_deref(), k.2.as_deref())
    }
}

impl Lookup<KnownKey> for KnownRef<'_> {
    fn to_key(&self) -> KnownKey {
        let owned = |v: Option<&str>| v.map(str::to_string);
        (owned(self.0), owned(self.1), owned(self.2))
    }
}

/// (Vendor, model, OS) combinations whose support is remembered at once.
const ASSESSED: usize = 4096;

/// Turns inventory devices into report entries: identity, support and the
/// maker's disclosure facts. Shared by `analyze` (once per device at the end)
/// and `monitor` (again whenever a device changes).
pub struct DeviceReporter {
    identifier: Identifier,
    vendors: &'static crate::signatures::vendors::VendorDb,
    /// Devices alike (thousands of "Linux" hosts of one maker) share one
    /// support assessment, found with the maker's entry in the vendor
    /// table (its disclosure policy).
    assessed: SharedMemo<KnownKey, (Arc<Support>, Option<&'static Vendor>)>,
    opts: ReportOptions,
}

impl DeviceReporter {
    pub fn new(opts: ReportOptions) -> DeviceReporter {
        DeviceReporter {
            identifier: Identifier::default(),
            vendors: crate::signatures::vendors::VendorDb::builtin(),
            assessed: SharedMemo::new(ASSESSED),
            opts,
        }
    }

    /// A reporter for another thread, sharing what this one has worked out.
    pub fn share(&self) -> DeviceReporter {
        DeviceReporter {
            identifier: self.identifier.share(),
            vendors: self.vendors,
            assessed: self.assessed.share(),
            opts: self.opts,
        }
    }

    /// The device's report entry, and its `end_of_support` event when support
    /// has ended or ends soon. `exposed`: a default credential was offered to
    /// or accepted by one of its addresses.
    pub fn report(
        &mut self,
        key: DeviceKey,
        d: &mut crate::inventory::Device,
        exposed: bool,
    ) -> (DeviceReport, Option<Event>) {
        let opts = &self.opts;
        let mac = match key {
            DeviceKey::Mac(m) => Some(mac_string(&m)),
            DeviceKey::Ip(_) => None,
        };
        let id = self.identifier.identify(
            match key {
                DeviceKey::Mac(m) => Some(m),
                DeviceKey::Ip(_) => None,
            },
            d,
        );
        let known = KnownRef(id.vendor.as_deref(), id.model.as_deref(), id.os.as_deref());
        let vendors = self.vendors;
        let (support, maker) = self
            .assessed
            .get_or_make(&known, |&KnownRef(vendor, model, os)| {
                let support = assess(&Known { vendor, model, os }, opts.as_of, opts.warn_days);
                (Arc::new(support), vendor.and_then(|v| vendors.find(v)))
            });
        let eos = matches!(support.status, "ended" | "ending-soon")
            .then(|| end_of_support_event(&mac, &id, &support, d.last_seen, opts));
        let disclosure = maker.map(|v| Disclosure {
            policy_url: v.policy_url.as_deref(),
            contact: v.contact.as_deref(),
            source: v.source.as_str(),
        });
        let report = DeviceReport {
            mac,
            ips: d.ips.iter().map(|ip| ip.to_string()).collect(),
            vendor: id.vendor,
            hostname: id.hostname,
            kind: id.kind,
            model: id.model,
            firmware: id.firmware,
            os: id.os,
            confidence: id.confidence,
            randomised_mac: id.randomised_mac,
            services: d.services.iter().map(|s| s.label()).collect(),
            first_seen: rfc3339(d.first_seen),
            last_seen: rfc3339(d.last_seen),
            packets: d.packets,
            bytes: d.bytes,
            code_of_practice: CodeOfPractice {
                default_credentials_seen: exposed,
                disclosure,
                support_status: support.status,
            },
            support,
            evidence: id.evidence,
        };
        (report, eos)
    }
}

pub fn mac_string(m: &[u8; 6]) -> String {
    // By hand: format! took 4 % of the report's time with 20,000 devices.
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(17);
    for (i, b) in m.iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    s
}

/// What a report says before its devices, and what its devices are made
/// from: the parts shared by [`build_report`] and [`write_json_report`].
struct Prepared {
    capture: CaptureSummary,
    /// Each worker's devices in key order, merged as they are reported.
    devices: Vec<Vec<(DeviceKey, Device)>>,
    /// Addresses that accepted or were offered a default credential.
    exposed: BTreeSet<IpAddr>,
    events: Vec<Event>,
    /// Freed with the devices, after the report, by whoever holds its
    /// [`Spent`] (see `Analysis`).
    spent_scans: Vec<crate::detect::scan::ScanDetector>,
}

fn prepare(analysis: Analysis, files: &[CaptureFile]) -> Prepared {
    let mut link_types: Vec<LinkType> = files
        .iter()
        .flat_map(|f| f.link_types().iter().copied())
        .collect();
    link_types.sort();
    link_types.dedup();
    let c = &analysis.counters;
    let capture = CaptureSummary {
        files: files.iter().map(|f| f.path().to_string()).collect(),
        packets: files.iter().map(|f| f.stats().packets).sum(),
        bytes: files.iter().map(|f| f.stats().bytes).sum(),
        first_ts: analysis.first_ts.map(rfc3339),
        last_ts: analysis.last_ts.map(rfc3339),
        decode_errors: c.decode_errors,
        link_types: link_types.iter().map(|l| l.name()).collect(),
        skipped_packets: files.iter().map(|f| f.stats().skipped_link).sum(),
        bad_records: files.iter().map(|f| f.stats().bad_records).sum(),
        fragments: c.fragments,
        flows: c.flows.flows,
        tcp_flows: c.flows.tcp,
        udp_flows: c.flows.udp,
        unanswered_syns: c.flows.unanswered_syns,
        flows_evicted: c.flows.evicted,
        warnings: files
            .iter()
            .flat_map(|f| f.warnings().iter().map(|w| w.to_string()))
            .chain(analysis.devices_over_cap.map(|cap| {
                format!(
                    "more than {cap} devices (a flood of made-up MACs?): \
                     only the {cap} with the least MACs, then home IPs, are reported"
                )
            }))
            .collect(),
    };
    // Devices that accepted or were offered a default credential: the server
    // side of a default login, matched by address (devices hold only home
    // addresses, so a router is not blamed for the Internet hosts behind it).
    let exposed = analysis
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            // Written from an `IpAddr`, so it parses back.
            EventKind::Login(l) if l.default_credential => l.server.ip.parse().ok(),
            _ => None,
        })
        .collect();
    Prepared {
        capture,
        devices: analysis.devices,
        exposed,
        events: analysis.events,
        spent_scans: analysis.spent_scans,
    }
}

/// Keys of the longest worker list per chunk, about as many devices
/// reported at a time (by either thread, when two share the work).
const CHUNK: usize = 64;
/// Chunks made ahead of the next one written out, at most.
const AHEAD: usize = 8;

/// A chunk of device entries rendered as JSON, or why one could not be.
#[derive(Default)]
struct Rendered {
    text: Vec<u8>,
    failed: Option<std::io::Error>,
}

/// Reports each device in key order, in chunks of the workers' device lists
/// (`inventory::key_chunks`): `make` adds an entry to a chunk's accumulator
/// (for JSON, its rendered text), `sink` is lent each chunk's in order, and
/// the devices' `end_of_support` events are returned. With `threads` > 1
/// this thread and one other each take the next chunk not yet taken, merge
/// its devices, identify them and make their entries, and `sink` is lent
/// them here in order. Taken in turn instead (this thread the even chunks, the
/// other the odd), each waited for the other 3-17 ms of home-mix's 50. A
/// chunk travels between threads whole: one allocation to hand over and
/// free, not one per device (which made the two threads contend for the
/// allocator), and goes back to be freed by the thread that made it.
fn report_devices<A: Default + Send>(
    lists: &mut [Vec<(DeviceKey, Device)>],
    exposed: &BTreeSet<IpAddr>,
    opts: ReportOptions,
    threads: usize,
    make: impl Fn(DeviceReport, &mut A) + Sync,
    mut sink: impl FnMut(&mut A),
) -> Vec<Event> {
    let report_chunk =
        |reporter: &mut DeviceReporter, chunk: KeyChunk<'_>, eos: &mut Vec<Event>| {
            let mut made = A::default();
            for (key, d) in chunk.merged() {
                let exposed = d.ips.iter().any(|ip| exposed.contains(ip));
                let (report, e) = reporter.report(key, d, exposed);
                eos.extend(e);
                make(report, &mut made);
            }
            made
        };
    let chunks = key_chunks(lists, CHUNK);
    let mut eos = Vec::new();
    if threads <= 1 {
        let mut reporter = DeviceReporter::new(opts);
        for chunk in chunks {
            sink(&mut report_chunk(&mut reporter, chunk, &mut eos));
        }
        return eos;
    }
    let count = chunks.len();
    let next = std::sync::Mutex::new(chunks.into_iter().enumerate());
    let take = || next.lock().unwrap_or_else(|e| e.into_inner()).next();
    std::thread::scope(|scope| {
        // Chunks made ahead of the one `sink` waits for: a few in flight,
        // so memory stays a few devices' worth.
        let (tx, rx) = crossbeam_channel::bounded::<(usize, A)>(4);
        // Its chunks, once written, go back to the other thread to be
        // freed: freed here, into its heap while it allocates there, they
        // made the two threads contend for that heap's lock.
        let (back_tx, back_rx) = crossbeam_channel::bounded::<A>(AHEAD + 8);
        let (report_chunk, take) = (&report_chunk, &take);
        // The signature tables are loaded by now: a sharded analysis loads
        // them as it merges its findings (`pipeline::run`).
        let mut reporter = DeviceReporter::new(opts);
        let mut theirs = reporter.share();
        let other = scope.spawn(move || {
            let mut eos = Vec::new();
            while let Some((k, chunk)) = take() {
                back_rx.try_iter().for_each(drop);
                let made = report_chunk(&mut theirs, chunk, &mut eos);
                if tx.send((k, made)).is_err() {
                    break;
                }
            }
            eos
        });
        let mut ahead = std::collections::BTreeMap::new();
        let mut sunk = 0;
        while sunk < count {
            match ahead.remove(&sunk) {
                Some((mut made, theirs)) => {
                    sink(&mut made);
                    if theirs {
                        let _ = back_tx.try_send(made);
                    }
                    sunk += 1;
                }
                None => {
                    // Make a chunk while the other thread makes the one
                    // awaited; once none are left (or enough wait here
                    // already), wait for it.
                    let mine = if ahead.len() < AHEAD { take() } else { None };
                    let (k, made) = match mine {
                        Some((k, chunk)) => {
                            (k, (report_chunk(&mut reporter, chunk, &mut eos), false))
                        }
                        None => match rx.recv() {
                            Ok((k, made)) => (k, (made, true)),
                            // The other thread panicked: its join says why.
                            Err(_) => break,
                        },
                    };
                    ahead.insert(k, made);
                    ahead.extend(rx.try_iter().map(|(k, made)| (k, (made, true))));
                }
            }
        }
        drop(rx);
        eos.extend(
            other
                .join()
                .unwrap_or_else(|e| std::panic::resume_unwind(e)),
        );
    });
    eos
}

/// The events with the devices' `end_of_support` events, in an order that
/// does not depend on the sharding: by time, then by content.
fn sorted_events(mut events: Vec<Event>, eos_events: Vec<Event>) -> Vec<Event> {
    events.extend(eos_events);
    events.sort_by_cached_key(|e| (e.ts, serde_json::to_string(e).unwrap_or_default()));
    events
}

/// Builds the report from a finished analysis and the files it read.
pub fn build_report(analysis: Analysis, files: &[CaptureFile], opts: &ReportOptions) -> Report {
    let mut p = prepare(analysis, files);
    let mut devices = Vec::with_capacity(p.devices.len());
    let eos = report_devices(
        &mut p.devices,
        &p.exposed,
        *opts,
        1,
        |d, chunk: &mut Vec<DeviceReport>| chunk.push(d),
        |chunk| devices.append(chunk),
    );
    Report {
        capture: p.capture,
        devices,
        events: sorted_events(p.events, eos),
    }
}

/// What a written report leaves behind: the analysis's devices and scan
/// findings, tens of MiB with many devices. Dropping it frees them (6-10
/// ms of home-mix's run); a process about to exit may leave that to the
/// operating system instead (`iotwatch analyze` does).
#[must_use = "dropping it frees the analysis; forgetting it leaves that to the process's exit"]
pub struct Spent {
    _devices: Vec<Vec<(DeviceKey, Device)>>,
    _scans: Vec<crate::detect::scan::ScanDetector>,
}

/// Writes the report as JSON: the same bytes as [`build_report`] through
/// `serde_json::to_writer_pretty`, but each device's entry is made, rendered
/// and dropped in turn (the whole report, tens of MiB with thousands of
/// devices, is never held), by `threads` threads (at most two). Hands back
/// what is left to free, for the caller to free when it suits it.
pub fn write_json_report(
    analysis: Analysis,
    files: &[CaptureFile],
    opts: &ReportOptions,
    threads: usize,
    mut out: impl std::io::Write,
) -> std::io::Result<Spent> {
    let mut p = prepare(analysis, files);
    out.write_all(b"{")?;
    Pretty::line(&mut out, 1, true)?;
    out.write_all(b"\"capture\": ")?;
    Pretty::write_at(&mut out, 1, &p.capture)?;
    Pretty::line(&mut out, 1, false)?;
    out.write_all(b"\"devices\": [")?;
    let mut failed = None;
    // Each entry is rendered after a comma; the array's first is written
    // without it.
    let render = |d: DeviceReport, chunk: &mut Rendered| {
        if chunk.failed.is_none()
            && let Err(e) = Pretty::line(&mut chunk.text, 2, false)
                .and_then(|()| Pretty::write_at(&mut chunk.text, 2, &d))
        {
            chunk.failed = Some(e);
        }
    };
    let mut any = false;
    let eos = report_devices(
        &mut p.devices,
        &p.exposed,
        *opts,
        threads,
        render,
        |chunk| {
            if failed.is_none() {
                let text = match chunk.text.split_first() {
                    Some((_comma, rest)) if !any => rest,
                    _ => &chunk.text[..],
                };
                any |= !chunk.text.is_empty();
                failed = match chunk.failed.take() {
                    Some(e) => Some(e),
                    None => out.write_all(text).err(),
                };
            }
        },
    );
    let spent = Spent {
        _devices: std::mem::take(&mut p.devices),
        _scans: p.spent_scans,
    };
    if let Some(e) = failed {
        return Err(e);
    }
    if any {
        Pretty::line(&mut out, 1, true)?;
    }
    out.write_all(b"]")?;
    Pretty::line(&mut out, 1, false)?;
    out.write_all(b"\"events\": ")?;
    Pretty::write_at(&mut out, 1, &sorted_events(p.events, eos))?;
    Pretty::line(&mut out, 0, true)?;
    out.write_all(b"}")?;
    Ok(spent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn support_keys_are_found_by_their_borrowed_form() {
        use std::hash::BuildHasher;
        let fx = rustc_hash::FxBuildHasher;
        let owned: KnownKey = (Some("Hikvision".into()), None, Some("Linux".into()));
        let borrowed = KnownRef(Some("Hikvision"), None, Some("Linux"));
        assert_eq!(fx.hash_one(&borrowed), fx.hash_one(&owned));
        assert!(hashbrown::Equivalent::equivalent(&borrowed, &owned));
        assert!(!hashbrown::Equivalent::equivalent(
            &KnownRef(None, None, Some("Linux")),
            &owned
        ));
        assert_eq!(borrowed.to_key(), owned);
    }

    #[test]
    fn mac_strings_are_lower_case_hex_pairs() {
        assert_eq!(
            mac_string(&[0x00, 0x1a, 0xff, 0x0b, 0xc0, 0x9f]),
            "00:1a:ff:0b:c0:9f"
        );
    }
}
