//! Device inventory: one device per MAC seen as a link-layer source (or, in
//! captures without MACs, per home IP), with the home addresses it uses, its
//! traffic, the services it offers and the evidence analyzers found.
//!
//! Every collection here is capped; a cap reached is counted, not grown past.

use std::collections::BTreeSet;
use std::net::IpAddr;

use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::capture::Nanos;
use crate::decode::{Mac, Packet};
use crate::flow::Flow;
use crate::netconf::HomeNets;

/// Devices one worker tracks. A home network has tens; this bounds a flood of
/// spoofed source MACs.
pub const MAX_DEVICES: usize = 16_384;
/// Home addresses kept per device (DHCP renewals, IPv6 privacy addresses).
pub const MAX_IPS: usize = 64;
/// Services kept per device.
pub const MAX_SERVICES: usize = 64;
/// Evidence entries kept per device.
pub const MAX_EVIDENCE: usize = 48;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeviceKey {
    Mac(Mac),
    Ip(IpAddr),
}

/// What an analyzer claims about a device, with the signal that shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Claims {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub firmware: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
}

/// One piece of evidence about the device at `mac` (or `ip`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fact {
    pub ts: Nanos,
    pub mac: Option<Mac>,
    pub ip: IpAddr,
    pub signal: &'static str,
    pub value: String,
    pub claims: Claims,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Evidence {
    pub signal: &'static str,
    pub value: String,
    pub claims: Claims,
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
    pub evidence: BTreeSet<Evidence>,
    pub evidence_dropped: u64,
}

impl Device {
    fn sent(&mut self, ts: Nanos) {
        if !self.seen_as_source || ts < self.first_seen {
            self.first_seen = ts;
        }
        self.seen_as_source = true;
        self.last_seen = self.last_seen.max(ts);
    }

    #[inline]
    fn add_ip(&mut self, ip: IpAddr) {
        if self.last_ip == Some(ip) {
            return;
        }
        self.last_ip = Some(ip);
        if self.ips.len() < MAX_IPS {
            self.ips.insert(ip);
        } else if !self.ips.contains(&ip) {
            self.ips_dropped += 1;
        }
    }

    fn add_evidence(&mut self, e: Evidence) {
        if self.evidence.len() < MAX_EVIDENCE {
            self.evidence.insert(e);
        } else if !self.evidence.contains(&e) {
            self.evidence_dropped += 1;
        }
    }

    /// Folds another worker's view of the same device in.
    fn merge(&mut self, o: Device) {
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
        self.evidence_dropped += o.evidence_dropped;
        o.ips.into_iter().for_each(|ip| self.add_ip(ip));
        for s in o.services {
            if self.services.len() < MAX_SERVICES {
                self.services.insert(s);
            }
        }
        o.evidence.into_iter().for_each(|e| self.add_evidence(e));
    }
}

/// Slots of the recent-MAC memo (direct-mapped by the MAC's last byte).
const MEMO: usize = 256;

pub struct Inventory {
    /// Recently looked-up MACs and their device index: a LAN's packets come
    /// from few MACs, and a memo hit skips hashing.
    memo: Box<[(u64, u32); MEMO]>,
    /// MACs as integers, and home IPs, to device index: integer keys hash fast.
    by_mac: FxHashMap<u64, u32>,
    by_ip: FxHashMap<IpAddr, u32>,
    devices: Vec<(DeviceKey, Device)>,
    /// Devices not tracked because `MAX_DEVICES` was reached.
    pub dropped: u64,
}

impl Default for Inventory {
    fn default() -> Self {
        Inventory {
            // No MAC maps to u64::MAX (its top two bytes are zero).
            memo: Box::new([(u64::MAX, 0); MEMO]),
            by_mac: FxHashMap::default(),
            by_ip: FxHashMap::default(),
            devices: Vec::new(),
            dropped: 0,
        }
    }
}

fn mac_u64(m: &Mac) -> u64 {
    u64::from_be_bytes([0, 0, m[0], m[1], m[2], m[3], m[4], m[5]])
}

fn unicast(m: &Mac) -> bool {
    m[0] & 1 == 0 && *m != [0; 6]
}

impl Inventory {
    fn find(&mut self, key: &DeviceKey) -> Option<u32> {
        match key {
            DeviceKey::Mac(m) => {
                let k = mac_u64(m);
                let slot = &mut self.memo[usize::from(m[5] ^ m[3])];
                if slot.0 == k {
                    return Some(slot.1);
                }
                let i = self.by_mac.get(&k).copied()?;
                *slot = (k, i);
                Some(i)
            }
            DeviceKey::Ip(ip) => self.by_ip.get(ip).copied(),
        }
    }

    #[inline]
    fn device(&mut self, key: DeviceKey) -> Option<&mut Device> {
        let i = match self.find(&key) {
            Some(i) => i,
            None => {
                if self.devices.len() >= MAX_DEVICES {
                    self.dropped += 1;
                    return None;
                }
                let i = self.devices.len() as u32;
                self.devices.push((key, Device::default()));
                match key {
                    DeviceKey::Mac(m) => self.by_mac.insert(mac_u64(&m), i),
                    DeviceKey::Ip(ip) => self.by_ip.insert(ip, i),
                };
                i
            }
        };
        Some(&mut self.devices[i as usize].1)
    }

    /// Accounts a packet to its sender and receiver.
    #[inline]
    pub fn observe(&mut self, p: &Packet<'_>, home: &HomeNets) {
        let len = u64::from(p.wire_len);
        let src_ip =
            p.ip.map(|ip| ip.src)
                .or(p.arp.map(|a| IpAddr::V4(a.sender_ip)));
        let home_src = src_ip.filter(|ip| home.contains(*ip) && !ip.is_unspecified());
        if let Some(mac) = p.src_mac {
            if unicast(&mac)
                && let Some(d) = self.device(DeviceKey::Mac(mac))
            {
                d.sent(p.ts);
                d.packets += 1;
                d.bytes += len;
                if let Some(ip) = home_src {
                    d.add_ip(ip);
                }
            }
            if let Some(dst) = p.dst_mac.filter(unicast)
                && let Some(d) = self.device(DeviceKey::Mac(dst))
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
        if home.contains(ip.dst)
            && !is_group(ip.dst)
            && let Some(d) = self.device(DeviceKey::Ip(ip.dst))
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
        let key = match f.macs[1] {
            Some(m) if unicast(&m) => DeviceKey::Mac(m),
            Some(_) => return,
            None => DeviceKey::Ip(ip),
        };
        // Only devices already seen; a flow alone does not make a device.
        if let Some(i) = self.find(&key) {
            let d = &mut self.devices[i as usize].1;
            if d.services.len() < MAX_SERVICES {
                d.services.insert(Service {
                    proto: f.key.proto,
                    port,
                });
            }
        }
    }

    pub fn add_fact(&mut self, fact: Fact) {
        let key = match fact.mac {
            Some(m) if unicast(&m) => DeviceKey::Mac(m),
            _ => DeviceKey::Ip(fact.ip),
        };
        if let Some(d) = self.device(key) {
            d.add_evidence(Evidence {
                signal: fact.signal,
                value: fact.value,
                claims: fact.claims,
            });
        }
    }

    /// Folds another worker's inventory into this one.
    pub fn merge(&mut self, other: Inventory) {
        self.dropped += other.dropped;
        for (key, dev) in other.devices {
            match self.device(key) {
                Some(d) => d.merge(dev),
                None => continue,
            }
        }
    }

    /// The devices seen sending, in key order.
    pub fn into_devices(self) -> Vec<(DeviceKey, Device)> {
        let mut v: Vec<_> = self
            .devices
            .into_iter()
            .filter(|(_, d)| d.seen_as_source)
            .collect();
        v.sort_by_key(|d| d.0);
        v
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
