//! The human summary `analyze` prints without `--json`.

use std::io::{self, Write};

use super::report::Report;
use crate::event::{Event, EventKind};
use crate::time::rfc3339;

/// One line a person can read for an event (also the monitor's syslog
/// message and the TUI's event log).
pub fn describe(e: &Event) -> String {
    let sev = serde_json::to_value(e.severity)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    match &e.kind {
        EventKind::Scan(s) => {
            let who = match &s.source.mac {
                Some(m) => format!("{} ({m})", s.source.ip),
                None => s.source.ip.clone(),
            };
            let ports: Vec<String> = s.ports.iter().take(5).map(u16::to_string).collect();
            let mut line = format!(
                "{} [{sev}] {} {} scan from {who}: {} SYNs to {} targets",
                rfc3339(e.ts),
                s.verdict,
                s.direction,
                s.syns,
                s.distinct_targets
            );
            if !ports.is_empty() {
                line += &format!(" on ports {}", ports.join(","));
            }
            if s.mirai_fingerprint {
                line += &format!(
                    "; {} with sequence number = destination (Mirai)",
                    s.mirai_matches
                );
            }
            if !s.open.is_empty() {
                line += &format!("; answered: {}", s.open.join(" "));
            }
            line
        }
        EventKind::Login(l) => {
            let mut line = format!(
                "{} [{sev}] {} login {} -> {}:{} user {} password {}: {:?}",
                rfc3339(e.ts),
                l.protocol,
                l.client.ip,
                l.server.ip,
                l.server.port,
                l.username.as_deref().unwrap_or("-"),
                l.password
                    .as_deref()
                    .or(l.password_masked.as_deref())
                    .unwrap_or("-"),
                l.outcome
            );
            if let Some(src) = &l.credential_source {
                line += &format!("; DEFAULT CREDENTIAL ({src})");
            }
            line
        }
        EventKind::EndOfSupport(x) => format!(
            "{} [{sev}] {} {} {}: security updates {} {}{}",
            rfc3339(e.ts),
            x.mac.as_deref().unwrap_or("-"),
            x.vendor.as_deref().unwrap_or(""),
            x.model.as_deref().or(x.os.as_deref()).unwrap_or(""),
            if x.status == "ended" { "ended" } else { "end" },
            x.end.as_deref().unwrap_or("(date not published)"),
            x.source
                .as_deref()
                .map(|s| format!("; source: {s}"))
                .unwrap_or_default()
        ),
        EventKind::Bruteforce(b) => format!(
            "{} [{sev}] {} brute force from {}: {} attempts ({} failed) on {} targets, {} with default credentials",
            rfc3339(e.ts),
            b.protocol,
            b.source.ip,
            b.attempts,
            b.failures,
            b.targets,
            b.default_credentials_tried
        ),
        EventKind::NewDevice(n) => format!(
            "{} [{sev}] new device {} {}{}",
            rfc3339(e.ts),
            n.mac.as_deref().unwrap_or("-"),
            n.ips.join(" "),
            [&n.vendor, &n.kind, &n.model, &n.hostname]
                .into_iter()
                .flatten()
                .map(|v| format!(" {v}"))
                .collect::<String>()
        ),
    }
}

/// What the device is, in words: "TP-Link smart-plug HS110(US), firmware
/// 1.2.5 Build 171206, os Linux, hostname plug" (None when nothing is known).
fn identity(d: &super::report::DeviceReport) -> Option<String> {
    let head: Vec<&str> = [&d.vendor, &d.kind, &d.model]
        .into_iter()
        .filter_map(|v| v.as_deref())
        .collect();
    let mut parts = Vec::new();
    if !head.is_empty() {
        parts.push(head.join(" "));
    }
    for (label, v) in [
        ("firmware", &d.firmware),
        ("os", &d.os),
        ("hostname", &d.hostname),
    ] {
        if let Some(v) = v {
            parts.push(format!("{label} {v}"));
        }
    }
    if d.randomised_mac {
        parts.push("randomised MAC".into());
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// The Code of Practice's three principles, side by side: default
/// credentials, whom to tell about a vulnerability, security updates.
fn code_of_practice(d: &super::report::DeviceReport) -> String {
    let c = &d.code_of_practice;
    let creds = if c.default_credentials_seen {
        "DEFAULT PASSWORD ACCEPTED"
    } else {
        "no default password seen"
    };
    let report = match &c.disclosure {
        Some(x) => match (&x.policy_url, &x.contact) {
            (Some(u), _) => format!("report flaws: {u}"),
            (None, Some(m)) => format!("report flaws: {m}"),
            (None, None) => "maker publishes no disclosure policy".to_string(),
        },
        None => "maker unknown or not listed".to_string(),
    };
    let updates = match (d.support.status, &d.support.end) {
        ("ended", Some(e)) => format!("updates ENDED {e}"),
        ("ended", None) => "updates ENDED".to_string(),
        ("ending-soon", Some(e)) => format!("updates end {e}"),
        ("supported", Some(e)) => format!("updates until {e}"),
        ("supported", None) => "updates: supported".to_string(),
        _ => "updates: unknown".to_string(),
    };
    format!("{creds}; {report}; {updates}")
}

/// Writes a readable summary: capture totals, the device table, events, warnings.
pub fn write_summary(r: &Report, w: &mut impl Write) -> io::Result<()> {
    let c = &r.capture;
    writeln!(w, "Capture: {}", c.files.join(", "))?;
    writeln!(
        w,
        "  {} packets, {} bytes, {} flows ({} unanswered SYNs), link types: {}",
        c.packets,
        c.bytes,
        c.flows,
        c.unanswered_syns,
        if c.link_types.is_empty() {
            "-".to_string()
        } else {
            c.link_types.join(", ")
        }
    )?;
    if let (Some(a), Some(b)) = (&c.first_ts, &c.last_ts) {
        writeln!(w, "  from {a} to {b}")?;
    }
    if c.decode_errors + c.skipped_packets + c.bad_records > 0 {
        writeln!(
            w,
            "  {} decode errors, {} packets of undecoded link types skipped, {} damaged records",
            c.decode_errors, c.skipped_packets, c.bad_records
        )?;
    }
    writeln!(w)?;
    writeln!(w, "Devices: {}", r.devices.len())?;
    if !r.devices.is_empty() {
        writeln!(
            w,
            "  {:<17}  {:<30}  {:>9}  {:>12}  services",
            "mac", "ips", "packets", "bytes"
        )?;
    }
    for d in &r.devices {
        let ips = match d.ips.len() {
            0 => "-".to_string(),
            1..=2 => d.ips.join(" "),
            n => format!("{} (+{} more)", d.ips[..2].join(" "), n - 2),
        };
        let services = if d.services.is_empty() {
            "-".to_string()
        } else {
            d.services.join(" ")
        };
        writeln!(
            w,
            "  {:<17}  {:<30}  {:>9}  {:>12}  {}",
            d.mac.as_deref().unwrap_or("-"),
            ips,
            d.packets,
            d.bytes,
            services
        )?;
        if let Some(id) = identity(d) {
            writeln!(w, "      {id}")?;
        }
        writeln!(w, "      {}", code_of_practice(d))?;
    }
    writeln!(w)?;
    writeln!(w, "Events: {}", r.events.len())?;
    for e in &r.events {
        writeln!(w, "  {}", describe(e))?;
    }
    if !c.warnings.is_empty() {
        writeln!(w)?;
        writeln!(w, "Warnings:")?;
        for m in &c.warnings {
            writeln!(w, "  {m}")?;
        }
    }
    Ok(())
}
