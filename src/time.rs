//! Capture time: nanoseconds since the Unix epoch, shown as RFC 3339 UTC.

use chrono::{DateTime, SecondsFormat};

use crate::capture::Nanos;

/// `2024-06-01T00:00:00.250000Z`: microseconds, the precision of most captures.
pub fn rfc3339(ts: Nanos) -> String {
    let secs = (ts / 1_000_000_000) as i64;
    let nanos = (ts % 1_000_000_000) as u32;
    match DateTime::from_timestamp(secs, nanos) {
        Some(t) => t.to_rfc3339_opts(SecondsFormat::Micros, true),
        None => format!("@{ts}ns"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_with_micros() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            rfc3339(1_717_200_000_250_000_000),
            "2024-06-01T00:00:00.250000Z"
        );
        // Past 2106, where 32-bit pcap seconds overflow.
        assert_eq!(
            rfc3339(4_354_819_200 * 1_000_000_000),
            "2108-01-01T00:00:00.000000Z"
        );
    }
}
