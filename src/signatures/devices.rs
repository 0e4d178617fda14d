//! `signatures/devices/*.tsv`: rules that read what a device showed (its
//! evidence: a DHCP vendor class, an mDNS TXT entry, a User-Agent) as claims
//! about what it is.
//!
//! A rule names a signal and field, a regular expression (case-insensitive)
//! over the value, the claims it makes (`vendor=Google;type=streamer;model=$1`,
//! where `$1` is a capture group) and a weight in (0, 1]. For each value and
//! each claimed field, the first matching rule wins: files are read in name
//! order, a user's overlay before the built-in ones, so specific rules go
//! before general ones and a user's rule before both.

use std::sync::OnceLock;

use regex_automata::meta::Regex;
use rustc_hash::{FxHashMap, FxHashSet};

use super::{SigError, parse_tsv};

pub const BUILTIN: &[(&str, &str)] = &[
    (
        "devices/oui.tsv",
        include_str!("../../signatures/devices/oui.tsv"),
    ),
    (
        "devices/dhcp.tsv",
        include_str!("../../signatures/devices/dhcp.tsv"),
    ),
    (
        "devices/mdns.tsv",
        include_str!("../../signatures/devices/mdns.tsv"),
    ),
    (
        "devices/upnp.tsv",
        include_str!("../../signatures/devices/upnp.tsv"),
    ),
    (
        "devices/http.tsv",
        include_str!("../../signatures/devices/http.tsv"),
    ),
    (
        "devices/clouds.tsv",
        include_str!("../../signatures/devices/clouds.tsv"),
    ),
    (
        "devices/banners.tsv",
        include_str!("../../signatures/devices/banners.tsv"),
    ),
    (
        "devices/tcp.tsv",
        include_str!("../../signatures/devices/tcp.tsv"),
    ),
    (
        "devices/services.tsv",
        include_str!("../../signatures/devices/services.tsv"),
    ),
];

/// The device types iotwatch reports (signatures/README.md explains each).
pub const TYPES: &[&str] = &[
    "camera",
    "dvr",
    "router",
    "smart-plug",
    "speaker",
    "tv",
    "streamer",
    "printer",
    "phone",
    "computer",
    "tablet",
    "hub",
    "lock",
    "thermostat",
    "light",
    "nas",
    "console",
    "sensor",
    "appliance",
    "unknown",
];

/// Signals the analyzers produce, so a rule for a misspelt one is an error.
pub const SIGNALS: &[&str] = &[
    "oui", "dhcp", "dhcpv6", "mdns", "ssdp", "upnp", "http", "rtsp", "tls", "dns", "tcp", "telnet",
    "ftp", "ssh", "snmp", "tplink", "service", "lan",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Field {
    Vendor,
    Type,
    Model,
    Firmware,
    Os,
    Hostname,
}

impl Field {
    pub const ALL: [Field; 6] = [
        Field::Vendor,
        Field::Type,
        Field::Model,
        Field::Firmware,
        Field::Os,
        Field::Hostname,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Field::Vendor => "vendor",
            Field::Type => "type",
            Field::Model => "model",
            Field::Firmware => "firmware",
            Field::Os => "os",
            Field::Hostname => "hostname",
        }
    }

    fn parse(s: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.name() == s)
    }
}

#[derive(Clone, Debug)]
pub struct Rule {
    pub id: String,
    pub signal: String,
    pub field: String,
    /// The pattern as written, and compiled.
    pub pattern: String,
    pub regex: Regex,
    /// Claimed fields and their templates (`$1` … are capture groups).
    pub claims: Vec<(Field, String)>,
    pub weight: f32,
    pub source: String,
    pub file: String,
    pub line: usize,
}

impl Rule {
    /// The claims this rule makes about `value`, if it matches.
    pub fn apply(&self, value: &str) -> Option<Vec<(Field, String)>> {
        let mut caps = self.regex.create_captures();
        self.regex.captures(value, &mut caps);
        if !caps.is_match() {
            return None;
        }
        Some(
            self.claims
                .iter()
                .map(|(f, t)| {
                    let mut out = String::new();
                    caps.interpolate_string_into(value, t, &mut out);
                    (*f, out.trim().to_string())
                })
                .filter(|(_, v)| !v.is_empty())
                .collect(),
        )
    }
}

pub fn parse(file: &str, text: &str) -> Result<Vec<Rule>, SigError> {
    parse_tsv(file, text, |r| {
        let id = r.get("id")?.to_string();
        let signal = r.get("signal")?;
        if !SIGNALS.contains(&signal) {
            return Err(r.error(format!(
                "unknown signal '{signal}' (one of {})",
                SIGNALS.join(", ")
            )));
        }
        let pattern = r.get("pattern")?;
        let regex = super::pattern::compile(pattern)
            .map_err(|e| r.error(format!("pattern does not compile: {e}")))?;
        let mut claims = Vec::new();
        for c in r
            .get("claims")?
            .split(';')
            .map(str::trim)
            .filter(|c| !c.is_empty())
        {
            let (k, v) = c
                .split_once('=')
                .ok_or_else(|| r.error(format!("claim '{c}' is not field=value")))?;
            let field = Field::parse(k.trim()).ok_or_else(|| {
                r.error(format!(
                    "unknown claim field '{k}' (vendor, type, model, firmware, os, hostname)"
                ))
            })?;
            let v = v.trim();
            if field == Field::Type && !TYPES.contains(&v) {
                return Err(r.error(format!("type '{v}' is not one of {}", TYPES.join(", "))));
            }
            for group in template_groups(v) {
                if group >= regex.captures_len() {
                    return Err(
                        r.error(format!("claim uses ${group}, the pattern has fewer groups"))
                    );
                }
            }
            claims.push((field, v.to_string()));
        }
        if claims.is_empty() {
            return Err(r.error("a rule needs at least one claim".into()));
        }
        let weight: f32 = r
            .get("weight")?
            .parse()
            .ok()
            .filter(|w: &f32| *w > 0.0 && *w <= 1.0)
            .ok_or_else(|| r.error("weight must be a number in (0, 1]".into()))?;
        Ok(Rule {
            id,
            signal: signal.to_string(),
            field: r.get("field")?.to_string(),
            pattern: pattern.to_string(),
            regex,
            claims,
            weight,
            source: r.get("source")?.to_string(),
            file: file.to_string(),
            line: r.line,
        })
    })
}

/// Capture-group numbers a template refers to (`$1`, `${2}`).
fn template_groups(t: &str) -> Vec<usize> {
    let b = t.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' {
            let rest = &t[i + 1..];
            let digits: String = rest
                .trim_start_matches('{')
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            if let Ok(n) = digits.parse() {
                out.push(n);
            }
        }
        i += 1;
    }
    out
}

/// Rules indexed by signal and field.
pub struct DeviceRules {
    rules: Vec<Rule>,
    by_key: FxHashMap<(String, String), Vec<u32>>,
}

static DB: OnceLock<DeviceRules> = OnceLock::new();

impl DeviceRules {
    /// Checks rule ids are unique and indexes them in order.
    pub fn new(rules: Vec<Rule>) -> Result<DeviceRules, SigError> {
        let mut seen = FxHashSet::default();
        let mut by_key: FxHashMap<(String, String), Vec<u32>> = FxHashMap::default();
        for (i, r) in rules.iter().enumerate() {
            if !seen.insert(r.id.as_str()) {
                return Err(SigError {
                    file: r.file.clone(),
                    line: r.line,
                    message: format!("duplicate rule id '{}'", r.id),
                });
            }
            by_key
                .entry((r.signal.clone(), r.field.clone()))
                .or_default()
                .push(i as u32);
        }
        Ok(DeviceRules { rules, by_key })
    }

    pub fn builtin() -> &'static DeviceRules {
        DB.get_or_init(|| DeviceRules::new(builtin_rules()).expect("built-in device rules parse"))
    }

    /// Puts `DIR/devices/*.tsv` before the built-in rules for this process.
    pub fn install_overlay(dir: &std::path::Path) -> Result<usize, SigError> {
        let mut all = Vec::new();
        for (name, text) in super::overlay_files(dir, "devices")? {
            all.extend(parse(&name, &text)?);
        }
        let n = all.len();
        let overlay_ids: FxHashSet<String> = all.iter().map(|r| r.id.clone()).collect();
        // A user's rule with a built-in rule's id replaces it.
        all.extend(
            builtin_rules()
                .into_iter()
                .filter(|r| !overlay_ids.contains(&r.id)),
        );
        let rules = DeviceRules::new(all)?;
        DB.set(rules).map_err(|_| SigError {
            file: dir.join("devices").display().to_string(),
            line: 0,
            message: "device rules already in use".into(),
        })?;
        Ok(n)
    }

    /// The rules for a signal and field, in order.
    pub fn for_key<'a>(&'a self, signal: &str, field: &str) -> impl Iterator<Item = &'a Rule> {
        self.by_key
            .get(&(signal.to_string(), field.to_string()))
            .into_iter()
            .flatten()
            .map(|&i| &self.rules[i as usize])
    }

    pub fn all(&self) -> &[Rule] {
        &self.rules
    }
}

pub fn builtin_rules() -> Vec<Rule> {
    BUILTIN
        .iter()
        .flat_map(|(f, t)| parse(f, t).expect("built-in device rules parse"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "id\tsignal\tfield\tpattern\tclaims\tweight\tsource\n";

    #[test]
    fn builtin_rules_load() {
        assert!(DeviceRules::builtin().all().len() > 50);
    }

    #[test]
    fn claims_expand_groups() {
        let rules = parse(
            "t.tsv",
            &format!("{HEAD}a\tdhcp\tvendor_class\t^android-dhcp-(\\d+)\tos=Android $1;type=phone\t0.8\tx\n"),
        )
        .unwrap();
        let c = rules[0].apply("android-dhcp-9").unwrap();
        assert_eq!(
            c,
            [
                (Field::Os, "Android 9".into()),
                (Field::Type, "phone".into())
            ]
        );
        assert!(rules[0].apply("MSFT 5.0").is_none());
    }

    #[test]
    fn bad_rules_name_file_and_line() {
        for (row, msg) in [
            ("a\tnope\tf\tx\tos=x\t0.5\ts", "unknown signal"),
            ("a\tdhcp\tf\t(\tos=x\t0.5\ts", "does not compile"),
            ("a\tdhcp\tf\tx\tcolour=x\t0.5\ts", "unknown claim field"),
            ("a\tdhcp\tf\tx\ttype=toaster\t0.5\ts", "type 'toaster'"),
            ("a\tdhcp\tf\t(x)\tos=$2\t0.5\ts", "$2"),
            ("a\tdhcp\tf\tx\tos=x\t1.5\ts", "weight"),
            ("a\tdhcp\tf\tx\tos=x\t0.5\t", "'source' is empty"),
        ] {
            let e = parse("t.tsv", &format!("{HEAD}{row}\n")).err().unwrap();
            assert_eq!((e.file.as_str(), e.line), ("t.tsv", 2), "{row}");
            assert!(e.message.contains(msg), "{row}: {}", e.message);
        }
        let two = parse(
            "t.tsv",
            &format!("{HEAD}a\tdhcp\tf\tx\tos=x\t0.5\ts\na\tdhcp\tf\ty\tos=y\t0.5\ts\n"),
        )
        .unwrap();
        let e = DeviceRules::new(two).err().unwrap();
        assert_eq!(e.line, 3);
        assert!(e.message.contains("duplicate"));
    }
}
