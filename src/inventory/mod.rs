//! Device inventory: one device per MAC seen as a link-layer source (or, in
//! captures without MACs, per home IP), with the home addresses it uses, its
//! traffic, the services it offers and the evidence analyzers found.
//!
//! Every collection here is capped; a cap reached is counted, not grown past.

use std::collections::{BTreeSet, BinaryHeap};
use std::net::IpAddr;

use rustc_hash::FxHashMap;

use crate::capture::Nanos;
use crate::decode::{Mac, Packet, addr16};
use crate::flow::Flow;
use crate::netconf::HomeNets;

mod merge;
#[cfg(test)]
pub use merge::merge_all;
pub use merge::{KeyChunk, keep_least_keys, key_chunks};

/// Devices one worker tracks. A home network has tens; this bounds a flood of
/// spoofed source MACs.
pub const MAX_DEVICES: usize = 65_536;
/// Home addresses kept per device (DHCP renewals, IPv6 privacy addresses).
pub const MAX_IPS: usize = 64;
/// Services kept per device.
pub const MAX_SERVICES: usize = 64;
/// Distinct values kept per kind of evidence (DNS names, SNIs …) per device.
pub const MAX_VALUES: usize = 32;
/// SYN signatures kept per device.
pub const MAX_SYNS: usize = 4;

/// What a full inventory does with a device it has not seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WhenFull {
    /// Keeps the devices with the least keys, evicting the greatest for a
    /// lesser newcomer. Which devices those are does not depend on how the
    /// packets were shared between workers, and a device among the least
    /// keys of the whole capture is never evicted by any worker, so each
    /// holds all of its data (`analyze`: the same report on any number of
    /// threads).
    KeepLeastKeys,
    /// Keeps the devices it has and drops newcomers (the live monitor: a
    /// flood of made-up MACs must not push out the home's own devices).
    KeepFirst,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeviceKey {
    Mac(Mac),
    Ip(IpAddr),
}

/// One thing a device showed about itself on the wire: a DHCP hostname, an
/// mDNS TXT entry, a User-Agent. What it means (vendor, model …) is decided
/// later, once per device, by the rules of `signatures/devices/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fact {
    pub ts: Nanos,
    pub mac: Option<Mac>,
    pub ip: IpAddr,
    /// Sent on the local link for sure (DHCP, mDNS, SSDP multicast), so the
    /// MAC is the sender's own even when the address is not a home one.
    pub on_link: bool,
    /// The same fact was reported before: it adds no evidence, only (when
    /// on the link) that its sender was there at `ts`.
    pub repeat: bool,
    pub signal: &'static str,
    pub field: &'static str,
    pub value: String,
}

/// Longest value kept: model strings are short, a 10 KB one is an attack.
pub const MAX_VALUE: usize = 200;

impl Fact {
    /// A fact about `sender`, with `value` made printable (see [`printable`]).
    pub fn new(
        ts: Nanos,
        sender: &crate::proto::Endpoint,
        signal: &'static str,
        field: &'static str,
        value: &[u8],
    ) -> Fact {
        Fact {
            ts,
            mac: sender.mac,
            ip: sender.ip,
            on_link: false,
            repeat: false,
            signal,
            field,
            value: printable(value),
        }
    }

    pub fn on_link(mut self) -> Fact {
        self.on_link = true;
        self
    }
}

/// `value` as printable text: trimmed, control characters and invalid UTF-8
/// escaped as `\xNN`, at most [`MAX_VALUE`] bytes.
pub fn printable(value: &[u8]) -> String {
    use std::fmt::Write;
    let value = value.trim_ascii();
    // Most values are plain ASCII text: copied as they are.
    if value.len() <= MAX_VALUE && value.iter().all(|b| (0x20..0x7f).contains(b)) {
        return String::from_utf8_lossy(value).into_owned();
    }
    let mut out = String::with_capacity(value.len().min(MAX_VALUE));
    for chunk in value.trim_ascii().utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() {
                let _ = write!(out, "\\x{:02x}", c as u32 & 0xff);
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
        if out.len() >= MAX_VALUE {
            break;
        }
    }
    if out.len() > MAX_VALUE {
        let mut cut = MAX_VALUE;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    out
}

/// Kind of evidence: the signal (`dhcp`) and the field within it (`hostname`).
pub type EvidenceKey = (&'static str, &'static str);

/// A device's own TCP SYN, as p0f reads it: initial TTL, window, MSS,
/// window scale and option layout. Fixed size, so keeping it costs no heap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SynSignature {
    pub ipv6: bool,
    pub ttl: u8,
    pub window: u16,
    pub mss: Option<u16>,
    pub scale: Option<u8>,
    /// Option kinds in order (40 bytes of options hold at most a dozen
    /// that matter; more are cut).
    pub layout: [u8; 12],
    pub layout_len: u8,
}

impl SynSignature {
    /// Reads the options of a SYN; a malformed option ends the walk.
    pub fn of(ipv6: bool, ttl: u8, window: u16, options: &[u8]) -> SynSignature {
        let mut s = SynSignature {
            ipv6,
            ttl,
            window,
            mss: None,
            scale: None,
            layout: [0; 12],
            layout_len: 0,
        };
        let mut i = 0;
        while i < options.len() && usize::from(s.layout_len) < s.layout.len() {
            let kind = options[i];
            s.layout[usize::from(s.layout_len)] = kind;
            s.layout_len += 1;
            match kind {
                0 => break,
                1 => i += 1,
                _ => {
                    let Some(&len) = options.get(i + 1) else {
                        break;
                    };
                    let len = usize::from(len);
                    if len < 2 || i + len > options.len() {
                        break;
                    }
                    match (kind, &options[i + 2..i + len]) {
                        (2, &[a, b]) => s.mss = Some(u16::from_be_bytes([a, b])),
                        (3, &[w]) => s.scale = Some(w),
                        _ => {}
                    }
                    i += len;
                }
            }
        }
        s
    }

    /// The TTL the sender started from: the next of 32, 64, 128, 255.
    pub fn initial_ttl(&self) -> u8 {
        [32u8, 64, 128, 255]
            .into_iter()
            .find(|&t| self.ttl <= t)
            .unwrap_or(255)
    }

    /// `ip=4 ittl=64 win=64240 mss=1460 ws=7 opts=mss,sok,ts,nop,ws`.
    pub fn render(&self) -> String {
        let names: Vec<String> = self.layout[..usize::from(self.layout_len)]
            .iter()
            .map(|k| match k {
                0 => "eol".to_string(),
                1 => "nop".into(),
                2 => "mss".into(),
                3 => "ws".into(),
                4 => "sok".into(),
                5 => "sack".into(),
                8 => "ts".into(),
                k => format!("?{k}"),
            })
            .collect();
        let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
        format!(
            "ip={} ittl={} win={} mss={} ws={} opts={}",
            if self.ipv6 { 6 } else { 4 },
            self.initial_ttl(),
            self.window,
            or_dash(self.mss.map(|m| m.to_string())),
            or_dash(self.scale.map(|m| m.to_string())),
            if names.is_empty() {
                "-".into()
            } else {
                names.join(",")
            }
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Service {
    pub proto: u8,
    pub port: u16,
}

impl Service {
    pub fn label(&self) -> String {
        let p = match self.proto {
            6 => "tcp",
            17 => "udp",
            _ => "ip",
        };
        format!("{p}/{}", self.port)
    }
}

#[derive(Clone, Debug, Default)]
pub struct Device {
    /// Seen sending; devices only ever addressed are not reported.
    pub seen_as_source: bool,
    pub first_seen: Nanos,
    pub last_seen: Nanos,
    pub packets: u64,
    pub bytes: u64,
    pub ips: BTreeSet<IpAddr>,
    pub ips_dropped: u64,
    /// The address added last: most packets repeat it, and then the set is not searched.
    last_ip: Option<IpAddr>,
    pub services: BTreeSet<Service>,
    /// Distinct evidence values with their kind, in (kind, value) order: at
    /// most [`MAX_VALUES`] per kind, of a few dozen kinds the analyzers emit.
    /// A flat list, as most devices have a handful (tree nodes would cost a
    /// kilobyte each).
    pub evidence: Vec<(EvidenceKey, String)>,
    /// Kinds that reached a cap: later values were not kept.
    pub evidence_full: Vec<EvidenceKey>,
    /// Packets it sent from non-home addresses: a router forwarding the
    /// Internet (or a VPN or container host).
    pub forwarded: u64,
    /// Distinct SYN signatures the device sent (usually one per OS stack).
    pub syns: [Option<SynSignature>; MAX_SYNS],
}

impl Device {
    fn sent(&mut self, ts: Nanos) {
        if !self.seen_as_source || ts < self.first_seen {
            self.first_seen = ts;
        }
        self.seen_as_source = true;
        self.last_seen = self.last_seen.max(ts);
    }

    /// Keeps the [`MAX_IPS`] least addresses, not the first ones: which
    /// those are does not depend on how the packets were shared between
    /// workers.
    #[inline]
    fn add_ip(&mut self, ip: IpAddr) {
        if self.last_ip == Some(ip) {
            return;
        }
        self.last_ip = Some(ip);
        if !insert_least(&mut self.ips, ip, MAX_IPS) {
            self.ips_dropped += 1;
        }
    }

    /// Keeps the [`MAX_VALUES`] least values of each kind, not the first
    /// ones: which those are does not depend on how the packets were shared
    /// between workers (nor, then, does the report). The list is kept in
    /// (kind, value) order, so a value is found by binary search: a busy
    /// device has hundreds, and scanning them all for each new value (and
    /// for each one merged from another worker) compared strings by the
    /// thousand.
    fn add_evidence(&mut self, key: EvidenceKey, value: impl AsRef<str> + Into<String>) {
        let from = self.evidence.partition_point(|(k, _)| *k < key);
        let of_kind = self.evidence[from..].partition_point(|(k, _)| *k == key);
        let at = match self.evidence[from..from + of_kind]
            .binary_search_by(|(_, v)| v.as_str().cmp(value.as_ref()))
        {
            Ok(_) => return,
            Err(at) => from + at,
        };
        if of_kind >= MAX_VALUES {
            if !self.evidence_full.contains(&key) {
                self.evidence_full.push(key);
            }
            // Only a value below the kind's greatest gets in, in its place.
            if at == from + of_kind {
                return;
            }
            self.evidence.remove(from + of_kind - 1);
        }
        self.evidence.insert(at, (key, value.into()));
    }

    /// Keeps the `MAX_SYNS` least signatures, not the first ones: which
    /// those are does not depend on how the packets were shared between
    /// workers.
    #[inline]
    fn add_syn(&mut self, sig: SynSignature) {
        if self.syns.contains(&Some(sig)) {
            return;
        }
        if let Some(free) = self.syns.iter_mut().find(|s| s.is_none()) {
            *free = Some(sig);
            return;
        }
        let greatest = self.syns.iter_mut().max().expect("MAX_SYNS > 0");
        if Some(sig) < *greatest {
            *greatest = Some(sig);
        }
    }

    /// Folds another worker's view of the same device in. `o` is read, not
    /// consumed: it may have been allocated on another thread, and freeing
    /// its parts here would free into that thread's heap while it is busy
    /// (see `inventory::merge`).
    fn merge(&mut self, o: &Device) {
        if o.seen_as_source {
            if !self.seen_as_source || o.first_seen < self.first_seen {
                self.first_seen = o.first_seen;
            }
            self.seen_as_source = true;
        }
        self.last_seen = self.last_seen.max(o.last_seen);
        self.packets += o.packets;
        self.bytes += o.bytes;
        self.ips_dropped += o.ips_dropped;
        for k in &o.evidence_full {
            if !self.evidence_full.contains(k) {
                self.evidence_full.push(*k);
            }
        }
        self.forwarded += o.forwarded;
        o.ips.iter().for_each(|&ip| self.add_ip(ip));
        for &s in &o.services {
            insert_least(&mut self.services, s, MAX_SERVICES);
        }
        for (key, v) in &o.evidence {
            self.add_evidence(*key, v.as_str());
        }
        o.syns.iter().flatten().for_each(|&s| self.add_syn(s));
    }
}

/// Slots of the recent-MAC memo (direct-mapped by bytes 5 and 3 of the MAC).
const MEMO: usize = 256;

pub struct Inventory {
    /// Recently looked-up MACs and their device index: a LAN's packets come
    /// from few MACs, and a memo hit skips hashing.
    memo: Box<[(u64, u32); MEMO]>,
    /// MACs as integers, and home IPs, to device index: integer keys hash fast.
    by_mac: FxHashMap<u64, u32>,
    by_ip: FxHashMap<IpAddr, u32>,
    devices: Vec<(DeviceKey, Device)>,
    max_devices: usize,
    when_full: WhenFull,
    /// The keys held, greatest first, once the inventory is full and keeps
    /// its least keys.
    greatest: Option<BinaryHeap<DeviceKey>>,
    /// A device was evicted or not taken in because `max_devices` was reached.
    pub over_cap: bool,
}

impl Default for Inventory {
    fn default() -> Self {
        Inventory::with_max_devices(MAX_DEVICES, WhenFull::KeepLeastKeys)
    }
}

impl Inventory {
    /// An inventory that holds at most `max_devices` devices.
    pub fn with_max_devices(max_devices: usize, when_full: WhenFull) -> Inventory {
        Inventory {
            // No MAC maps to u64::MAX (its top two bytes are zero).
            memo: Box::new([(u64::MAX, 0); MEMO]),
            by_mac: FxHashMap::default(),
            by_ip: FxHashMap::default(),
            devices: Vec::new(),
            max_devices,
            when_full,
            greatest: None,
            over_cap: false,
        }
    }
}

/// Adds `v` to a set capped at `cap` that keeps its least values, not its
/// first ones (so what it holds does not depend on the order values came in,
/// or on how workers shared them). False when `v` was new and is not kept.
fn insert_least<T: Ord>(set: &mut BTreeSet<T>, v: T, cap: usize) -> bool {
    if set.len() < cap {
        set.insert(v);
        return true;
    }
    if set.contains(&v) {
        return true;
    }
    if set.last().is_some_and(|greatest| v < *greatest) {
        set.pop_last();
        set.insert(v);
    }
    false
}

/// A MAC as a map key (byte `i` in bits `8 i ..`: one load, no swapping).
fn mac_u64(m: &Mac) -> u64 {
    u64::from_le_bytes([m[0], m[1], m[2], m[3], m[4], m[5], 0, 0])
}

/// The memo slot of MAC `k`: bytes 5 and 3, as vendors number their
/// devices in the last bytes.
#[inline]
fn memo_slot(k: u64) -> usize {
    (((k >> 40) ^ (k >> 24)) & 0xff) as usize
}

fn unicast(m: &Mac) -> bool {
    m[0] & 1 == 0 && *m != [0; 6]
}

impl Inventory {
    fn find(&mut self, key: &DeviceKey) -> Option<u32> {
        match key {
            DeviceKey::Mac(m) => self.mac_index(mac_u64(m)),
            DeviceKey::Ip(ip) => self.by_ip.get(ip).copied(),
        }
    }

    /// The device with MAC `k` (as `mac_u64` gives it), through the memo.
    #[inline]
    fn mac_index(&mut self, k: u64) -> Option<u32> {
        let slot = &mut self.memo[memo_slot(k)];
        if slot.0 == k {
            return Some(slot.1);
        }
        let i = self.by_mac.get(&k).copied()?;
        *slot = (k, i);
        Some(i)
    }

    fn device(&mut self, key: DeviceKey) -> Option<&mut Device> {
        match key {
            DeviceKey::Mac(m) => self.mac_device(m),
            DeviceKey::Ip(ip) => match self.by_ip.get(&ip) {
                Some(&i) => Some(&mut self.devices[i as usize].1),
                None => self.add_device(key),
            },
        }
    }

    /// `device` for a MAC, taken by value so it stays in a register: a key
    /// read back from memory just after it was stored stalled every packet.
    #[inline]
    fn mac_device(&mut self, m: Mac) -> Option<&mut Device> {
        match self.mac_index(mac_u64(&m)) {
            Some(i) => Some(&mut self.devices[i as usize].1),
            None => self.add_device(DeviceKey::Mac(m)),
        }
    }

    #[cold]
    fn add_device(&mut self, key: DeviceKey) -> Option<&mut Device> {
        let i = if self.devices.len() < self.max_devices {
            self.devices.push((key, Device::default()));
            self.devices.len() as u32 - 1
        } else {
            self.over_cap = true;
            let i = self.evict_for(key)?;
            self.devices[i as usize] = (key, Device::default());
            i
        };
        match key {
            DeviceKey::Mac(m) => self.by_mac.insert(mac_u64(&m), i),
            DeviceKey::Ip(ip) => self.by_ip.insert(ip, i),
        };
        Some(&mut self.devices[i as usize].1)
    }

    /// Makes room for `key` in a full inventory that keeps its least keys:
    /// evicts the greatest key held if `key` is less, and gives its index.
    /// An evicted key never comes back: the greatest key held only falls.
    fn evict_for(&mut self, key: DeviceKey) -> Option<u32> {
        if self.when_full != WhenFull::KeepLeastKeys {
            return None;
        }
        let devices = &self.devices;
        let greatest = self
            .greatest
            .get_or_insert_with(|| devices.iter().map(|d| d.0).collect());
        let mut top = greatest.peek_mut()?;
        if key >= *top {
            return None;
        }
        let old = std::mem::replace(&mut *top, key);
        drop(top);
        match old {
            DeviceKey::Mac(m) => {
                let k = mac_u64(&m);
                let slot = &mut self.memo[memo_slot(k)];
                if slot.0 == k {
                    *slot = (u64::MAX, 0);
                }
                self.by_mac.remove(&k)
            }
            DeviceKey::Ip(ip) => self.by_ip.remove(&ip),
        }
    }

    /// Accounts a packet to its sender and receiver.
    #[inline]
    pub fn observe(&mut self, p: &Packet<'_>, home: &HomeNets) {
        let len = u64::from(p.wire_len);
        let (src16, src_ip) = match (p.ip, p.arp) {
            (Some(ip), _) => (ip.src16, Some(ip.src())),
            (None, Some(a)) => (
                addr16(IpAddr::V4(a.sender_ip)),
                Some(IpAddr::V4(a.sender_ip)),
            ),
            (None, None) => (0, None),
        };
        // Tested in the decoded form, which is in registers: an `IpAddr`
        // passed by reference was read back in pieces, and stalled.
        let home_src = src_ip.filter(|ip| home.contains16(src16) && !ip.is_unspecified());
        // All-zero MACs (loopback captured as Ethernet, synthetic traces)
        // name no device: such packets are keyed by IP as if MAC-less.
        if let Some(mac) = p.src_mac.filter(|m| *m != [0; 6]) {
            if unicast(&mac)
                && let Some(d) = self.mac_device(mac)
            {
                d.sent(p.ts);
                d.packets += 1;
                d.bytes += len;
                if let Some(ip) = home_src {
                    d.add_ip(ip);
                } else if src_ip.is_some_and(|ip| !ip.is_unspecified() && !ip.is_multicast()) {
                    d.forwarded += 1;
                }
            }
            if let Some(dst) = p.dst_mac.filter(unicast)
                && let Some(d) = self.mac_device(dst)
            {
                d.packets += 1;
                d.bytes += len;
            }
            return;
        }
        // No link-layer addresses: home IPs stand for devices.
        let Some(ip) = p.ip else { return };
        if let Some(src) = home_src
            && let Some(d) = self.device(DeviceKey::Ip(src))
        {
            d.sent(p.ts);
            d.packets += 1;
            d.bytes += len;
            d.add_ip(src);
        }
        let dst = ip.dst();
        if home.contains16(ip.dst16)
            && !is_group(dst)
            && let Some(d) = self.device(DeviceKey::Ip(dst))
        {
            d.packets += 1;
            d.bytes += len;
        }
    }

    /// Records the server side of an ended flow as a service when it answered
    /// and is a home device.
    pub fn flow_ended(&mut self, f: &Flow, home: &HomeNets) {
        if !f.answered() {
            return;
        }
        let server = f.client_side().other();
        let ip = f.key.addr(server);
        let port = f.key.port(server);
        if !home.contains(ip) || port == 0 {
            return;
        }
        if f.key.proto == 17 {
            // A UDP reply from an ephemeral port (RTP, P2P) is not a service.
            let client_port = f.key.port(f.client_side());
            if port > client_port || port >= 49152 {
                return;
            }
        } else if f.key.proto != 6 {
            return;
        }
        let key = match f.macs[1].filter(|m| *m != [0; 6]) {
            Some(m) if unicast(&m) => DeviceKey::Mac(m),
            Some(_) => return,
            None => DeviceKey::Ip(ip),
        };
        // Only devices already seen; a flow alone does not make a device.
        if let Some(i) = self.find(&key) {
            let d = &mut self.devices[i as usize].1;
            let service = Service {
                proto: f.key.proto,
                port,
            };
            insert_least(&mut d.services, service, MAX_SERVICES);
        }
    }

    /// Files a fact under the device that sent it. A fact from a non-home
    /// address is not a device's unless it was surely sent on the link: the
    /// router forwards the Internet, and its MAC must not collect the
    /// Internet's User-Agents and Server headers.
    pub fn add_fact(&mut self, fact: Fact, home: &HomeNets) {
        let home_ip = home.contains(fact.ip) && !fact.ip.is_unspecified();
        let key = match fact.mac.filter(|m| *m != [0; 6]) {
            Some(m) if unicast(&m) && (home_ip || fact.on_link) => DeviceKey::Mac(m),
            None if home_ip => DeviceKey::Ip(fact.ip),
            _ => return,
        };
        if let Some(d) = self.device(key) {
            // Sent on the link by this device (a DHCP request relayed from
            // another segment names its client by hardware address).
            if fact.on_link {
                d.sent(fact.ts);
            }
            if !fact.repeat {
                d.add_evidence((fact.signal, fact.field), fact.value);
            }
        }
    }

    /// Notes the SYN signature of a home device's connection attempt.
    #[inline]
    pub fn syn(&mut self, p: &Packet<'_>, sig: impl FnOnce() -> SynSignature, home: &HomeNets) {
        let Some(ip) = p.ip.filter(|ip| home.contains16(ip.src16)) else {
            return;
        };
        let key = match p.src_mac.filter(|m| *m != [0; 6]) {
            Some(m) if unicast(&m) => DeviceKey::Mac(m),
            Some(_) => return,
            None => DeviceKey::Ip(ip.src()),
        };
        if let Some(i) = self.find(&key) {
            let d = &mut self.devices[i as usize].1;
            d.add_syn(sig());
        }
    }

    /// The devices seen sending, in no set order, to look at while the
    /// capture goes on (live monitor).
    pub fn devices_mut(&mut self) -> impl Iterator<Item = (DeviceKey, &mut Device)> {
        self.devices
            .iter_mut()
            .filter(|(_, d)| d.seen_as_source)
            .map(|(k, d)| (*k, d))
    }

    /// Puts back a device remembered from an earlier run (the monitor's
    /// store), so that it keeps its evidence and totals.
    pub fn restore(&mut self, key: DeviceKey, mut old: Device) {
        old.seen_as_source = true;
        if let Some(d) = self.device(key) {
            d.merge(&old);
        }
    }

    /// Every device, seen sending or not (another worker may have seen it
    /// send), in key order: a worker's part of [`key_chunks`].
    pub fn into_sorted(self) -> Vec<(DeviceKey, Device)> {
        let mut devices = self.devices;
        // Sorted as (key, index) pairs, then put in that order in place, one
        // swap each: sorting the devices themselves moved each of their few
        // hundred bytes some fifteen times, and collecting them into new
        // vectors faulted in megabytes of fresh pages.
        let mut order: Vec<(DeviceKey, u32)> = devices
            .iter()
            .enumerate()
            .map(|(i, (k, _))| (*k, i as u32))
            .collect();
        // Keys are unique: an unstable sort gives the one order.
        order.sort_unstable();
        // `at[p]`: the original index of the device now at position p;
        // `pos[i]`: where the device originally at i now is.
        let mut at: Vec<u32> = (0..devices.len() as u32).collect();
        let mut pos = at.clone();
        for (p, &(_, i)) in order.iter().enumerate() {
            let from = pos[i as usize] as usize;
            if from != p {
                devices.swap(p, from);
                let displaced = at[p];
                at[from] = displaced;
                pos[displaced as usize] = from as u32;
                at[p] = i;
                pos[i as usize] = p as u32;
            }
        }
        devices
    }
}

fn is_group(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => a.is_multicast() || a.is_broadcast() || a.octets()[3] == 255,
        IpAddr::V6(a) => a.is_multicast(),
    }
}

#[cfg(test)]
mod tests;
