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

use serde::Serialize;

use crate::decode::Mac;
use crate::inventory::{Device, printable};
use crate::signatures::devices::{DeviceRules, Field};
use crate::signatures::oui::{OuiDb, is_local};
use crate::signatures::vendors::VendorDb;

/// Longest model, firmware or OS string reported (they feed the support
/// matcher; longer ones are junk or an attack).
const MAX_CLAIM: usize = 64;

/// One evidence entry as reported: the signal, its field, the value seen
/// and what the rules read into it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Evidence {
    pub signal: &'static str,
    pub field: &'static str,
    pub value: String,
    pub claims: BTreeMap<&'static str, String>,
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
    pub confidence: BTreeMap<&'static str, f64>,
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

pub fn identify(mac: Option<Mac>, dev: &Device) -> Identity {
    let rules = DeviceRules::builtin();
    let vendors = VendorDb::builtin();
    let mut id = Identity::default();
    let mut items: Vec<(&'static str, &'static str, String)> = Vec::new();
    if let Some(m) = mac {
        if is_local(&m) {
            id.randomised_mac = true;
            items.push(("oui", "randomised", "locally administered MAC".into()));
        } else if let Some(e) = OuiDb::builtin().lookup(&m) {
            items.push(("oui", "organization", e.organization.clone()));
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
    for s in dev.syns.iter().flatten() {
        items.push(("tcp", "syn", s.render()));
    }
    for ((signal, field), values) in &dev.evidence {
        for v in values {
            items.push((signal, field, v.clone()));
        }
    }
    let mut scores: BTreeMap<Field, BTreeMap<String, Score>> = BTreeMap::new();
    for (signal, field, value) in items {
        let mut claims: BTreeMap<Field, (String, f32)> = BTreeMap::new();
        for rule in rules.for_key(signal, field) {
            if let Some(cs) = rule.apply(&value) {
                for (f, v) in cs {
                    // The first matching rule per claimed field wins.
                    claims.entry(f).or_insert((v, rule.weight));
                }
            }
        }
        let mut shown = BTreeMap::new();
        for (f, (v, w)) in claims {
            let v = normalise(f, &printable(v.as_bytes()), vendors);
            if v.is_empty() || (f == Field::Type && v == "unknown") {
                continue;
            }
            let s = scores
                .entry(f)
                .or_default()
                .entry(v.to_lowercase())
                .or_insert_with(|| Score {
                    display: v.clone(),
                    ..Score::default()
                });
            let best = s.by_signal.entry(signal).or_default();
            *best = best.max(f64::from(w));
            shown.insert(f.name(), v);
        }
        id.evidence.push(Evidence {
            signal,
            field,
            value,
            claims: shown,
        });
    }
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
        id.confidence.insert(field.name(), confidence);
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
    id
}

#[cfg(test)]
mod tests;
