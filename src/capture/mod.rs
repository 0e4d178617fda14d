//! Capture stage: turns capture files (and, later, live interfaces) into frames.
//!
//! A [`Frame`] borrows its bytes from the reader's buffer; nothing is copied
//! unless several files are merged into one timeline (see [`merge`]).

pub mod file;
pub mod live;
mod mapped;
pub mod merge;
pub mod ring;

pub use file::{CaptureError, CaptureFile, FileWarning};
pub use mapped::{SharedMap, prefetch};
pub use merge::Timeline;

/// Nanoseconds since the Unix epoch. A `u64` reaches the year 2554, so the
/// 2106 overflow of 32-bit pcap seconds is not a problem here.
pub type Nanos = u64;

/// Link-layer header types we decode (DLT / LINKTYPE numbers from tcpdump.org).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LinkType {
    Ethernet,
    /// BSD loopback: a 4-byte address family in the writer's byte order.
    Null,
    /// OpenBSD loopback: a 4-byte address family in network byte order.
    Loop,
    /// Raw IPv4 or IPv6, version read from the first nibble (DLT 12, 14, 101).
    Raw,
    RawIpv4,
    RawIpv6,
    LinuxSll,
    LinuxSll2,
    /// Anything else: the frames are counted as skipped.
    Other(u32),
}

impl LinkType {
    pub fn from_dlt(dlt: u32) -> LinkType {
        match dlt {
            1 => LinkType::Ethernet,
            0 => LinkType::Null,
            108 => LinkType::Loop,
            12 | 14 | 101 => LinkType::Raw,
            228 => LinkType::RawIpv4,
            229 => LinkType::RawIpv6,
            113 => LinkType::LinuxSll,
            276 => LinkType::LinuxSll2,
            other => LinkType::Other(other),
        }
    }

    pub fn is_supported(self) -> bool {
        !matches!(self, LinkType::Other(_))
    }

    /// The name tcpdump and tshark print for it.
    pub fn name(self) -> String {
        match self {
            LinkType::Ethernet => "EN10MB".into(),
            LinkType::Null => "NULL".into(),
            LinkType::Loop => "LOOP".into(),
            LinkType::Raw => "RAW".into(),
            LinkType::RawIpv4 => "IPV4".into(),
            LinkType::RawIpv6 => "IPV6".into(),
            LinkType::LinuxSll => "LINUX_SLL".into(),
            LinkType::LinuxSll2 => "LINUX_SLL2".into(),
            LinkType::Other(n) => format!("DLT_{n}"),
        }
    }
}

/// One captured frame as the reader hands it on.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    pub ts: Nanos,
    pub link: LinkType,
    /// Bytes captured (at most the snaplen).
    pub data: &'a [u8],
    /// Length on the wire.
    pub orig_len: u32,
}

#[cfg(test)]
impl<'a> Frame<'a> {
    /// A frame captured whole, for tests.
    pub fn whole(link: LinkType, data: &'a [u8]) -> Frame<'a> {
        Frame {
            ts: 1,
            link,
            data,
            orig_len: data.len() as u32,
        }
    }
}
