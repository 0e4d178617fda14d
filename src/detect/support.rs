//! End of support: matches what the inventory knows of a device (vendor,
//! model, OS and version) to the published support periods, and says whether
//! it still gets security updates on a given day.

use chrono::NaiveDate;
use serde::Serialize;

use crate::signatures::support::{End, EndKind, Match, Period, SupportDb, fold_text};
use crate::signatures::vendors::fold;

/// What the report says about a device's support.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Support {
    /// `supported`, `ending-soon`, `ended` or `unknown`.
    pub status: &'static str,
    pub end: Option<String>,
    /// Borrowed from the support table, which lives for the whole run: a
    /// network of thousands of devices shares a few sources.
    pub source: Option<&'static str>,
    /// The rule that matched, and what of the device it matched.
    pub rule: Option<&'static str>,
    pub matched: Option<String>,
    /// Why the status is what it is, in words (always set for `unknown`).
    pub reason: Option<String>,
}

impl Support {
    fn unknown(reason: &str) -> Support {
        Support {
            status: "unknown",
            end: None,
            source: None,
            rule: None,
            matched: None,
            reason: Some(reason.to_string()),
        }
    }
}

/// What is known of the device.
pub struct Known<'a> {
    pub vendor: Option<&'a str>,
    pub model: Option<&'a str>,
    pub os: Option<&'a str>,
}

/// Whether a period's maker is the device's (`vendor`: the device's vendor
/// folded, when known).
fn same_maker(p: &Period, vendor: Option<&str>) -> bool {
    let Some(v) = vendor else { return true };
    p.vendor_keys
        .iter()
        .any(|k| !k.is_empty() && (k.contains(v) || v.contains(k.as_str())))
}

pub fn assess(k: &Known<'_>, as_of: NaiveDate, warn_days: i64) -> Support {
    let db = SupportDb::builtin();
    let vendor = k.vendor.map(fold).filter(|v| !v.is_empty());
    let vendor = vendor.as_deref();
    let model_hit = k.model.and_then(|m| {
        let folded = fold_text(m);
        db.all()
            .iter()
            .find(|p| p.matches == Match::Model && p.is_match(m, &folded) && same_maker(p, vendor))
            .map(|p| (p, format!("model {m}")))
    });
    let os_hit = k.os.and_then(|o| {
        let folded = fold_text(o);
        db.all()
            .iter()
            .find(|p| p.matches == Match::Os && p.is_match(o, &folded))
            .map(|p| (p, format!("os {o}")))
    });
    // The model's own period first (its maker's promise); its OS release's
    // when the model is not listed or lists only a production date.
    let usable = |h: &Option<(&Period, String)>| {
        h.as_ref()
            .is_some_and(|(p, _)| !matches!(p.kind, EndKind::ProductionUntil | EndKind::Policy))
    };
    let hit = if usable(&model_hit) {
        model_hit
    } else if usable(&os_hit) {
        os_hit
    } else if let Some((p, m)) = model_hit.or(os_hit) {
        let mut s = Support::unknown(if p.kind == EndKind::ProductionUntil {
            "only a production guarantee is published for it, not a security-update date"
        } else {
            "its maker publishes a policy, not a date for this model"
        });
        s.source = Some(p.source.as_str());
        s.rule = Some(p.id.as_str());
        s.matched = Some(m);
        return s;
    } else {
        let policy = vendor.and_then(|v| {
            db.all()
                .iter()
                .find(|p| p.matches == Match::Vendor && same_maker(p, Some(v)))
        });
        let mut s = Support::unknown(match (k.model, k.os, policy) {
            (None, None, _) => "neither the model nor the OS version is visible in the traffic",
            (_, _, Some(_)) => {
                "no support period is listed for this model; its maker publishes a policy"
            }
            _ => "no support period is listed for this model or OS version",
        });
        if let Some(p) = policy {
            s.source = Some(p.source.as_str());
            s.rule = Some(p.id.as_str());
        }
        return s;
    };
    let Some((p, matched)) = hit else {
        return Support::unknown("no support period is listed for this model or OS version");
    };
    let (status, end, reason) = match &p.end {
        End::Date(d) => {
            let days = (*d - as_of).num_days();
            let status = if days < 0 {
                "ended"
            } else if days <= warn_days {
                "ending-soon"
            } else {
                "supported"
            };
            (status, Some(d.to_string()), None)
        }
        End::Ended => ("ended", None, Some("ended; the source gives no date")),
        End::Unannounced => (
            "supported",
            None,
            Some("no end announced when the source was read"),
        ),
        End::PossiblyEnded => (
            "unknown",
            None,
            Some("the source says it may have ended, unconfirmed"),
        ),
        End::Policy => ("unknown", None, Some("a policy, no date")),
    };
    Support {
        status,
        end,
        source: Some(p.source.as_str()),
        rule: Some(p.id.as_str()),
        matched: Some(matched),
        reason: reason.map(String::from),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn known<'a>(
        vendor: Option<&'a str>,
        model: Option<&'a str>,
        os: Option<&'a str>,
    ) -> Known<'a> {
        Known { vendor, model, os }
    }

    #[test]
    fn android_release_from_a_dhcp_vendor_class() {
        // android-dhcp-9 reads as "Android 9" (signatures/devices/dhcp.tsv).
        let s = assess(&known(None, None, Some("Android 9")), day("2026-11-26"), 90);
        assert_eq!((s.status, s.end.as_deref()), ("ended", Some("2022-01-01")));
        assert!(s.source.unwrap().contains("endoflife.date/android"));
        // The day before it ended, and 30 days before.
        let s = assess(&known(None, None, Some("Android 9")), day("2021-12-31"), 90);
        assert_eq!(s.status, "ending-soon");
        let s = assess(&known(None, None, Some("Android 9")), day("2021-01-01"), 90);
        assert_eq!(s.status, "supported");
    }

    #[test]
    fn ios_from_a_user_agent() {
        let s = assess(
            &known(Some("Apple"), None, Some("iOS 13.5")),
            day("2026-11-26"),
            90,
        );
        assert_eq!((s.status, s.end.as_deref()), ("ended", Some("2020-09-16")));
    }

    #[test]
    fn model_wins_over_os() {
        // A Pixel 5's own promise (Nov 2023) counts, not Android 13's.
        let s = assess(
            &known(Some("Google"), Some("Pixel 5"), Some("Android 13")),
            day("2026-11-26"),
            90,
        );
        assert_eq!(s.end.as_deref(), Some("2023-11-05"));
        assert_eq!(s.matched.as_deref(), Some("model Pixel 5"));
    }

    #[test]
    fn raspberry_pi_production_dates_are_not_support() {
        let s = assess(
            &known(Some("Raspberry Pi"), Some("3 Model B"), None),
            day("2040-01-01"),
            90,
        );
        assert_ne!(s.status, "ended");
    }

    #[test]
    fn unknown_says_why() {
        let s = assess(
            &known(Some("TP-Link"), Some("HS110(US)"), None),
            day("2026-11-26"),
            90,
        );
        assert_eq!(s.status, "unknown");
        assert!(s.reason.unwrap().contains("policy"));
        assert!(s.source.is_some());
        let s = assess(&known(None, None, None), day("2026-11-26"), 90);
        assert!(s.reason.unwrap().contains("neither"));
    }
}
