//! Logins: checked against the default-credential lists, and the only place
//! a password is ever written out — in clear only when it is a known default,
//! masked otherwise (privacy at the producer). Brute force is judged over the
//! logins of a whole run.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::capture::Nanos;
use crate::event::{Event, EventKind, Severity};
use crate::netconf::HomeNets;
use crate::output::report::mac_string;
use crate::proto::{Endpoint, FlowInfo};
use crate::signatures::credentials::CredentialDb;

/// Bytes of a username or password kept (Zeek cuts FTP arguments at 128).
pub const MAX_FIELD: usize = 128;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Failure,
    Unknown,
}

/// What an analyzer saw of one login attempt.
#[derive(Clone, Debug)]
pub struct Attempt<'a> {
    pub protocol: &'static str,
    pub username: Option<&'a [u8]>,
    pub password: Option<&'a [u8]>,
    /// The attempt matched a default by other means (a Digest response
    /// computed from a listed password): (username, password) of the entry.
    pub proven_default: Option<(&'a str, &'a str)>,
    pub outcome: Outcome,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Peer {
    pub ip: String,
    pub port: u16,
    pub mac: Option<String>,
}

impl Peer {
    fn of(e: &Endpoint) -> Peer {
        Peer {
            ip: e.ip.to_string(),
            port: e.port,
            mac: e.mac.as_ref().map(mac_string),
        }
    }
}

/// The `login` event of DESIGN.md.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LoginEvent {
    pub protocol: &'static str,
    pub client: Peer,
    pub server: Peer,
    pub username: Option<String>,
    /// Only when it is a known default.
    pub password: Option<String>,
    pub password_masked: Option<String>,
    pub default_credential: bool,
    pub credential_source: Option<String>,
    pub outcome: Outcome,
}

fn text(b: &[u8]) -> String {
    let b = &b[..b.len().min(MAX_FIELD)];
    String::from_utf8_lossy(b)
        .chars()
        .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
        .collect()
}

/// `p*****`: the first character and one star for each of the others; a
/// password of three characters or fewer is all stars, since its first
/// character would give away too much of it.
pub fn mask(password: &str) -> String {
    let n = password.chars().count();
    let mut chars = password.chars();
    match chars.next() {
        None => String::new(),
        Some(_) if n <= 3 => "*".repeat(n),
        Some(first) => std::iter::once(first).chain(chars.map(|_| '*')).collect(),
    }
}

/// Builds the event for an attempt on a flow.
pub fn login_event(flow: &FlowInfo, ts: Nanos, a: &Attempt<'_>, db: &CredentialDb) -> Event {
    let username = a.username.map(text);
    let password = a.password.map(text);
    let matched = match (a.proven_default, &password) {
        (Some((u, p)), _) => db.lookup(a.protocol, u, p),
        (None, Some(p)) => db.lookup(a.protocol, username.as_deref().unwrap_or(""), p),
        (None, None) => None,
    };
    let severity = match (matched.is_some(), a.outcome) {
        (true, Outcome::Success) => Severity::Critical,
        (true, _) => Severity::High,
        (false, Outcome::Success) => Severity::Info,
        (false, _) => Severity::Low,
    };
    let login = LoginEvent {
        protocol: a.protocol,
        client: Peer::of(&flow.client),
        server: Peer::of(&flow.server),
        username,
        password: matched.map(|c| c.password.clone()),
        password_masked: password.as_deref().map(mask),
        default_credential: matched.is_some(),
        credential_source: matched.map(|c| c.label()),
        outcome: a.outcome,
    };
    Event {
        ts,
        severity,
        kind: EventKind::Login(login),
    }
}

/// Failed logins from one client on one protocol that make a brute force.
/// Mirai gives up on a target after 10 tries; Zeek's FTP default is 20
/// failures. Five failures already are more than a person mistyping.
pub const BRUTEFORCE_FAILURES: u64 = 5;

/// The `bruteforce` event of DESIGN.md.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BruteforceEvent {
    pub source: Peer,
    pub protocol: &'static str,
    pub targets: u64,
    pub attempts: u64,
    pub failures: u64,
    pub successes: u64,
    pub default_credentials_tried: u64,
    /// Usernames tried (at most 10).
    pub usernames: Vec<String>,
    /// The verdict of the same source's scan, if it scanned.
    pub scan_verdict: Option<&'static str>,
}

/// One `bruteforce` event per client and protocol with enough failures.
pub fn bruteforce_events(events: &[Event], home: &HomeNets) -> Vec<Event> {
    #[derive(Default)]
    struct Acc {
        first: Nanos,
        mac: Option<String>,
        targets: BTreeSet<String>,
        attempts: u64,
        failures: u64,
        successes: u64,
        defaults: u64,
        usernames: BTreeSet<String>,
    }
    let mut by: BTreeMap<(String, &'static str), Acc> = BTreeMap::new();
    for e in events {
        let EventKind::Login(l) = &e.kind else {
            continue;
        };
        let a = by.entry((l.client.ip.clone(), l.protocol)).or_default();
        a.first = if a.attempts == 0 {
            e.ts
        } else {
            a.first.min(e.ts)
        };
        // The smallest: the same whatever order the workers' events came in.
        a.mac = match (a.mac.take(), l.client.mac.clone()) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        };
        a.targets.insert(l.server.ip.clone());
        a.attempts += 1;
        match l.outcome {
            Outcome::Failure => a.failures += 1,
            Outcome::Success => a.successes += 1,
            Outcome::Unknown => {}
        }
        a.defaults += u64::from(l.default_credential);
        if let Some(u) = &l.username {
            a.usernames.insert(u.clone());
            if a.usernames.len() > 10 {
                a.usernames.pop_last();
            }
        }
    }
    by.into_iter()
        .filter(|(_, a)| a.failures >= BRUTEFORCE_FAILURES)
        .map(|((ip, protocol), a)| {
            let home_client = ip.parse().is_ok_and(|ip| home.contains(ip));
            let outward = a
                .targets
                .iter()
                .any(|t| t.parse().is_ok_and(|t| !home.contains(t)));
            let severity = if home_client && outward {
                Severity::Critical
            } else if a.successes > 0 || home_client {
                Severity::High
            } else {
                Severity::Medium
            };
            Event {
                ts: a.first,
                severity,
                kind: EventKind::Bruteforce(BruteforceEvent {
                    source: Peer {
                        ip,
                        port: 0,
                        mac: if home_client { a.mac } else { None },
                    },
                    protocol,
                    targets: a.targets.len() as u64,
                    attempts: a.attempts,
                    failures: a.failures,
                    successes: a.successes,
                    default_credentials_tried: a.defaults,
                    usernames: a.usernames.into_iter().collect(),
                    scan_verdict: None,
                }),
            }
        })
        .collect()
}

/// Links each source's `scan` and `bruteforce` events to each other.
pub fn link_scans_and_bruteforce(events: &mut [Event]) {
    let mut verdicts: BTreeMap<String, &'static str> = BTreeMap::new();
    let mut brute: BTreeMap<String, Vec<&'static str>> = BTreeMap::new();
    for e in events.iter() {
        match &e.kind {
            EventKind::Scan(s) => {
                verdicts.insert(s.source.ip.clone(), s.verdict);
            }
            EventKind::Bruteforce(b) => brute
                .entry(b.source.ip.clone())
                .or_default()
                .push(b.protocol),
            _ => {}
        }
    }
    for e in events.iter_mut() {
        match &mut e.kind {
            EventKind::Scan(s) => {
                if let Some(p) = brute.get(&s.source.ip) {
                    s.bruteforce = p.clone();
                    s.bruteforce.sort_unstable();
                }
            }
            EventKind::Bruteforce(b) => b.scan_verdict = verdicts.get(&b.source.ip).copied(),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_keep_only_the_first_character() {
        assert_eq!(mask("password"), "p*******");
        assert_eq!(mask(""), "");
        assert_eq!(mask("1"), "*");
        assert_eq!(mask("abc"), "***");
        assert_eq!(mask("éabc"), "é***");
    }
}
