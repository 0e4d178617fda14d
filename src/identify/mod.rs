//! Inference: what a device is, from the evidence the analyzers collected.
//!
//! Each evidence value is read by the rules of `signatures/devices/` into
//! claims (`vendor`, `type`, `model`, `firmware`, `os`, `hostname`) with a
//! weight. Per field and value, each signal counts once, with its strongest
//! claim (twenty cloud names looked up are one signal, not twenty), and the
//! signals add up as independent ones (1 - Π(1 - w)); the value with the
//! highest score wins, and its
//! confidence is that score scaled by its share of all the field's scores,
//! so two signals that disagree both lose confidence. Runs once per device
//! at the end of an analysis, never per packet.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use crate::decode::Mac;
use crate::inventory::{Device, printable};
use crate::memo::{Lookup, SharedMemo};
use crate::signatures::devices::{DeviceRules, Field};
use crate::signatures::oui::{OuiDb, is_local};
use crate::signatures::vendors::VendorDb;

/// Longest model, firmware or OS string reported (they feed the support
/// matcher; longer ones are junk or an attack).
const MAX_CLAIM: usize = 64;

/// A few named values, serialised as a JSON object. A vector, not a tree:
/// each device has thousands of these at most a handful long, and a tree
/// node costs hundreds of bytes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Fields<V>(pub Vec<(&'static str, V)>);

impl<V> Fields<V> {
    pub fn get(&self, key: &str) -> Option<&V> {
        self.0.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }
}

impl<V> std::ops::Index<&str> for Fields<V> {
    type Output = V;
    fn index(&self, key: &str) -> &V {
        self.get(key).expect("no such field")
    }
}

impl<V: Serialize> Serialize for Fields<V> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// One evidence entry as reported: the signal, its field, the value seen
/// and what the rules read into it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Evidence {
    pub signal: &'static str,
    pub field: &'static str,
    pub value: String,
    pub claims: Fields<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Identity {
    pub vendor: Option<String>,
    pub hostname: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub model: Option<String>,
    pub firmware: Option<String>,
    pub os: Option<String>,
    /// Per field, 0 to 1.
    pub confidence: Fields<f64>,
    pub evidence: Vec<Evidence>,
    /// The MAC is locally administered (randomised): it names no maker.
    pub randomised_mac: bool,
}

/// Normalises a claimed value: vendors to their canonical name, the rest
/// with spaces collapsed and cut to [`MAX_CLAIM`].
fn normalise(field: Field, v: &str, vendors: &VendorDb) -> String {
    let collapsed = v.split_whitespace().collect::<Vec<_>>().join(" ");
    match field {
        Field::Vendor => vendors.canonical(&collapsed),
        Field::Type => collapsed.to_lowercase(),
        _ => {
            let mut s = collapsed;
            if s.len() > MAX_CLAIM {
                let mut cut = MAX_CLAIM;
                while !s.is_char_boundary(cut) {
                    cut -= 1;
                }
                s.truncate(cut);
            }
            s
        }
    }
}

/// Accumulated score of one candidate value of a field.
#[derive(Default)]
struct Score {
    display: String,
    /// The strongest claim for it per signal.
    by_signal: BTreeMap<&'static str, f64>,
}

impl Score {
    /// 1 - Π(1 - w) over the signals.
    fn score(&self) -> f64 {
        1.0 - self.by_signal.values().map(|w| 1.0 - w).product::<f64>()
    }
    fn weight(&self) -> f64 {
        self.by_signal.values().sum()
    }
}

/// What the rules for `signal` and `field` read into `value`: the first
/// matching rule per claimed field wins.
fn read_claims(
    rules: &DeviceRules,
    vendors: &VendorDb,
    signal: &str,
    field: &str,
    value: &str,
) -> Claims {
    let mut first: BTreeMap<Field, (String, f32)> = BTreeMap::new();
    for rule in rules.for_key(signal, field) {
        if let Some(cs) = rule.apply(value) {
            for (f, v) in cs {
                first.entry(f).or_insert((v, rule.weight));
            }
        }
    }
    Arc::new(
        first
            .into_iter()
            .map(|(f, (v, w))| (f, normalise(f, &printable(v.as_bytes()), vendors), w))
            .filter(|(f, v, _)| !(v.is_empty() || (*f == Field::Type && v == "unknown")))
            .collect(),
    )
}

/// Evidence values whose claims are remembered at once.
const MEMO: usize = 4096;

/// Claims read from one evidence value, normalised: (field, value, weight).
type Claims = Arc<Vec<(Field, String, f32)>>;

/// Reads devices one after another. Evidence values repeat across devices
/// (registry names, SYN signatures, cloud names), so what the rules read
/// into each is remembered for the run, by every thread that reads devices
/// (`Identifier::share`).
pub struct Identifier {
    rules: &'static DeviceRules,
    vendors: &'static VendorDb,
    memo: SharedMemo<(&'static str, &'static str, String), Claims>,
}

/// An evidence value's memo key as looked up: (signal, field, value).
#[derive(Hash)]
struct ClaimKey<'a>(&'static str, &'static str, &'a str);

impl hashbrown::Equivalent<(&'static str, &'static str, String)> for ClaimKey<'_> {
    fn equivalent(&self, k: &(&'static str, &'static str, String)) -> bool {
        (self.0, self.1, self.2) == (k.0, k.1, k.2.as_str())
    }
}

impl Lookup<(&'static str, &'static str, String)> for ClaimKey<'_> {
    fn to_key(&self) -> (&'static str, &'static str, String) {
        (self.0, self.1, self.2.to_string())
    }
}

impl Default for Identifier {
    fn default() -> Self {
        Identifier {
            rules: DeviceRules::builtin(),
            vendors: VendorDb::builtin(),
            memo: SharedMemo::new(MEMO),
        }
    }
}

impl Identifier {
    /// An identifier for another thread, sharing this one's memo.
    pub fn share(&self) -> Identifier {
        Identifier {
            rules: self.rules,
            vendors: self.vendors,
            memo: self.memo.share(),
        }
    }

    fn claims(&mut self, signal: &'static str, field: &'static str, value: &str) -> Claims {
        let (rules, vendors) = (self.rules, self.vendors);
        self.memo.get_or_make(&ClaimKey(signal, field, value), |_| {
            read_claims(rules, vendors, signal, field, value)
        })
    }

    /// What the device at `mac` (or a MAC-less one) is; takes its evidence
    /// (moved into the result, not copied).
    pub fn identify(&mut self, mac: Option<Mac>, dev: &mut Device) -> Identity {
        let mut id = Identity::default();
        let syn_count = dev.syns.iter().flatten().count();
        let count = 2 + dev.services.len() + syn_count + dev.evidence.len();
        let mut items: Vec<(&'static str, &'static str, String)> = Vec::with_capacity(count);
        if let Some(m) = mac {
            if is_local(&m) {
                id.randomised_mac = true;
                items.push(("oui", "randomised", "locally administered MAC".into()));
            } else if let Some(e) = OuiDb::builtin().lookup(&m) {
                items.push(("oui", "organization", e.organization.to_string()));
            }
        }
        for s in &dev.services {
            items.push(("service", "port", s.label()));
        }
        if dev.forwarded > 0 {
            // A share, so that a few stray packets do not make a router.
            let share = dev.forwarded * 100 / dev.packets.max(1);
            items.push((
                "lan",
                "forwards",
                format!("{share}% of its packets from non-home addresses"),
            ));
        }
        // Sorted, as the evidence below: with several workers a device's
        // SYNs, and its facts, arrive in any order.
        let mut syns: Vec<_> = dev.syns.iter().flatten().collect();
        syns.sort_unstable();
        for s in syns {
            items.push(("tcp", "syn", s.render()));
        }
        let mut evidence = std::mem::take(&mut dev.evidence);
        evidence.sort_unstable();
        for ((signal, field), v) in evidence {
            items.push((signal, field, v));
        }
        let mut scores: BTreeMap<Field, BTreeMap<String, Score>> = BTreeMap::new();
        id.evidence.reserve_exact(items.len());
        for (signal, field, value) in items {
            let claims = self.claims(signal, field, &value);
            let mut shown = Fields::default();
            for (f, v, w) in claims.iter() {
                let candidates = scores.entry(*f).or_default();
                // Candidates go by their lower case, made only for a value
                // that has upper case (most are lower case already).
                let lower = if v.is_ascii() && !v.bytes().any(|b| b.is_ascii_uppercase()) {
                    std::borrow::Cow::Borrowed(v.as_str())
                } else {
                    std::borrow::Cow::Owned(v.to_lowercase())
                };
                if !candidates.contains_key(&*lower) {
                    let s = Score {
                        display: v.clone(),
                        ..Score::default()
                    };
                    candidates.insert(lower.to_string(), s);
                }
                let s = candidates.get_mut(&*lower).expect("inserted if missing");
                let best = s.by_signal.entry(signal).or_default();
                *best = best.max(f64::from(*w));
                shown.0.push((f.name(), v.clone()));
            }
            id.evidence.push(Evidence {
                signal,
                field,
                value,
                claims: shown,
            });
        }
        self.decide(scores, &mut id);
        id
    }

    fn decide(&self, scores: BTreeMap<Field, BTreeMap<String, Score>>, id: &mut Identity) {
        for (field, candidates) in scores {
            let total: f64 = candidates.values().map(Score::score).sum();
            // Highest score; ties go to the value seen with more weight, then
            // the lexically first (deterministic).
            let Some(best) = candidates.values().max_by(|a, b| {
                a.score()
                    .total_cmp(&b.score())
                    .then(a.weight().total_cmp(&b.weight()))
                    .then(b.display.cmp(&a.display))
            }) else {
                continue;
            };
            let score = best.score();
            let confidence = (score * score / total * 100.0).round() / 100.0;
            id.confidence.0.push((field.name(), confidence));
            let v = Some(best.display.clone());
            match field {
                Field::Vendor => id.vendor = v,
                Field::Type => id.kind = v,
                Field::Model => id.model = v,
                Field::Firmware => id.firmware = v,
                Field::Os => id.os = v,
                Field::Hostname => id.hostname = v,
            }
        }
    }
}

#[cfg(test)]
mod tests;
