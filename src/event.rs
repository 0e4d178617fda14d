//! Events: what analyzers and detectors report, self-contained and
//! serializable so they can leave the sensor as they are (JSON lines, NATS).

use serde::{Serialize, Serializer};

use crate::capture::Nanos;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

/// One event. `kind` and its fields are flattened into the object, as in the
/// report contract of DESIGN.md.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Event {
    #[serde(serialize_with = "serialize_ts")]
    pub ts: Nanos,
    pub severity: Severity,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// The kinds of event; each detector adds its own.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    Login(crate::detect::credentials::LoginEvent),
    Bruteforce(crate::detect::credentials::BruteforceEvent),
    Scan(crate::detect::scan::ScanEvent),
    EndOfSupport(EndOfSupportEvent),
    NewDevice(NewDeviceEvent),
}

impl EventKind {
    /// The `kind` name of the JSON object.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Login(_) => "login",
            EventKind::Bruteforce(_) => "bruteforce",
            EventKind::Scan(_) => "scan",
            EventKind::EndOfSupport(_) => "end_of_support",
            EventKind::NewDevice(_) => "new_device",
        }
    }
}

/// A device the monitor had never seen before (live only: in a capture
/// file every device would be new).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NewDeviceEvent {
    pub mac: Option<String>,
    pub ips: Vec<String>,
    pub vendor: Option<String>,
    pub hostname: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub model: Option<String>,
}

/// A device past (or near) the end of its security-update support.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EndOfSupportEvent {
    pub mac: Option<String>,
    pub vendor: Option<String>,
    pub model: Option<String>,
    pub os: Option<String>,
    pub end: Option<String>,
    /// `ended` or `ending-soon`.
    pub status: &'static str,
    pub source: Option<String>,
    /// What of the device matched the support period (`model Pixel 5`).
    pub matched: Option<String>,
}

pub fn serialize_ts<S: Serializer>(ts: &Nanos, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::time::rfc3339(*ts))
}
