//! Streaming reader for pcap and pcapng files (plain, gzip-compressed, or stdin).
//!
//! Built on `pcap-parser`'s streaming readers, which parse records in place in
//! one large buffer: frames are handed to a callback as borrowed slices, so a
//! whole file goes through with no per-packet allocation of ours. A regular
//! file is mapped instead (`capture::mapped`) and parsed where it lies, its
//! pcap records by a loop of their own (`run_mapped_pcap`).
//!
//! Damage is never fatal to what came before it: a truncated or malformed
//! record ends (or, in pcapng, skips) with a [`FileWarning`] naming the file and
//! byte offset, and every complete record before it is still analysed.

use std::fmt;
use std::fs::File;
use std::io::{self, Cursor, Read};
use std::path::Path;
use std::sync::Arc;

use pcap_parser::pcapng::Block;
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{LegacyPcapBlock, LegacyPcapReader, PcapBlockOwned, PcapError, PcapNGReader};

use super::mapped::{MappedReader, SharedMap};
use super::{Frame, LinkType, Nanos};

/// Initial read buffer. Refills move only the tail of a partial record, so a
/// large buffer means few `read` calls.
const BUFFER_SIZE: usize = 1 << 20;
/// Largest record we grow the buffer for. libpcap caps snaplen at 256 KiB; a
/// length beyond this is a corrupt header, not a packet.
pub(super) const MAX_RECORD: usize = 16 << 20;
/// Bytes read ahead to recognise the format before handing the stream on.
const PROBE_LEN: usize = 64 * 1024;

/// A fatal problem with one input: it cannot be read as a capture at all.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("{path}: {source}")]
    Open { path: String, source: io::Error },
    #[error("{path}: is a directory, not a capture file")]
    Directory { path: String },
    #[error("{path}: empty file, not a capture")]
    Empty { path: String },
    #[error("{path}: not a pcap or pcapng file (starts with {magic})")]
    NotCapture { path: String, magic: String },
    #[error("{path}: capture header is truncated or malformed ({detail})")]
    BadHeader { path: String, detail: String },
    #[error("{path}: read error at byte offset {offset}: {detail}")]
    Read {
        path: String,
        offset: u64,
        detail: String,
    },
}

/// A problem that ends or skips part of a file but not the run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileWarning {
    pub path: String,
    /// Byte offset of the record concerned, in the (decompressed) stream.
    pub offset: Option<u64>,
    pub message: String,
}

impl fmt::Display for FileWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.offset {
            Some(off) => write!(f, "{}: at byte offset {}: {}", self.path, off, self.message),
            None => write!(f, "{}: {}", self.path, self.message),
        }
    }
}

/// Counters for one file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileStats {
    /// Packet records read (whatever their link type).
    pub packets: u64,
    /// Captured bytes of those records.
    pub bytes: u64,
    /// Records of a link type we do not decode.
    pub skipped_link: u64,
    /// Records dropped as malformed (bad interface id, skipped pcapng block, …).
    pub bad_records: u64,
    /// The file ended inside a record, or damage stopped the reading early.
    pub truncated: bool,
}

#[derive(Clone, Copy, Debug)]
struct Interface {
    link: LinkType,
    snaplen: u32,
    /// Timestamp units per second.
    resolution: u64,
    /// Seconds added to every timestamp (pcapng `if_tsoffset`).
    offset_secs: i64,
}

enum Format {
    Legacy {
        link: LinkType,
        nanos: bool,
        snaplen: u32,
    },
    Ng {
        interfaces: Vec<Interface>,
        big_endian: bool,
    },
}

/// What a capture holds, known from its magic number.
#[derive(Clone, Copy)]
pub(super) enum Kind {
    /// pcap, either byte order, micro- or nanoseconds.
    Legacy,
    Ng,
}

impl Kind {
    /// Recognises the first four bytes of a file (`None` for anything else,
    /// gzip and Kuznetzov's modified pcap included).
    pub(super) fn of(head: &[u8]) -> Option<Kind> {
        match u32::from_le_bytes(head.get(..4)?.try_into().ok()?) {
            0x0A0D_0D0A => Some(Kind::Ng),
            0xA1B2_C3D4 | 0xD4C3_B2A1 | 0xA1B2_3C4D | 0x4D3C_B2A1 => Some(Kind::Legacy),
            _ => None,
        }
    }
}

impl Format {
    /// Empty: the header blocks come first from the reader and fill it in.
    fn of(kind: Kind) -> Format {
        match kind {
            Kind::Legacy => Format::Legacy {
                link: LinkType::Other(u32::MAX),
                nanos: false,
                snaplen: 0,
            },
            Kind::Ng => Format::Ng {
                interfaces: Vec::new(),
                big_endian: false,
            },
        }
    }
}

/// What a frame callback tells the reader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// Stop after this frame; the next `run` call resumes with the next one.
    Pause,
}

/// Whether `run` stopped because the callback paused or the file ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunEnd {
    Paused,
    Finished,
}

/// Where records come from: a file mapped in place, or any stream through
/// `pcap-parser`'s buffered readers.
enum Reader {
    Mapped(MappedReader),
    Stream(Box<dyn PcapReaderIterator + Send>),
}

impl Reader {
    fn get(&mut self) -> &mut dyn PcapReaderIterator {
        match self {
            Reader::Mapped(r) => r,
            Reader::Stream(r) => r.as_mut(),
        }
    }

    fn consumed(&self) -> usize {
        match self {
            Reader::Mapped(r) => r.consumed(),
            Reader::Stream(r) => r.consumed(),
        }
    }
}

/// One open capture file.
pub struct CaptureFile {
    path: String,
    reader: Reader,
    format: Format,
    stats: FileStats,
    warnings: Vec<FileWarning>,
    /// Link types seen, with the interface index they came from (pcapng).
    link_types: Vec<LinkType>,
    warned_links: Vec<u32>,
    warned_snaplen: bool,
    done: bool,
    mapping: Option<Arc<SharedMap>>,
}

impl CaptureFile {
    /// Opens `path` (`-` is standard input); gzip is recognised by its magic.
    pub fn open(path: &str) -> Result<CaptureFile, CaptureError> {
        let open_err = |source| CaptureError::Open {
            path: path.to_string(),
            source,
        };
        let input: Box<dyn Read + Send> = if path == "-" {
            Box::new(io::stdin())
        } else {
            if Path::new(path).is_dir() {
                return Err(CaptureError::Directory { path: path.into() });
            }
            let file = File::open(path).map_err(open_err)?;
            if let Some((reader, kind)) = MappedReader::map(&file) {
                let mapping = Some(reader.mapping());
                return Ok(Self::with_reader(
                    path,
                    Reader::Mapped(reader),
                    kind,
                    mapping,
                ));
            }
            Box::new(file)
        };
        Self::from_reader(path, input)
    }

    /// Reads a capture from any stream; `name` is used in messages.
    pub fn from_reader(
        name: &str,
        input: Box<dyn Read + Send>,
    ) -> Result<CaptureFile, CaptureError> {
        let (head, input) = probe(name, input)?;
        if head.starts_with(&[0x1f, 0x8b]) {
            let gz = flate2::read::MultiGzDecoder::new(Cursor::new(head).chain(input));
            let (head, inner) = probe(name, Box::new(gz))?;
            return Self::with_head(name, head, inner);
        }
        Self::with_head(name, head, input)
    }

    fn with_head(
        name: &str,
        head: Vec<u8>,
        rest: Box<dyn Read + Send>,
    ) -> Result<CaptureFile, CaptureError> {
        let bad = |detail: String| CaptureError::BadHeader {
            path: name.to_string(),
            detail,
        };
        let Some(kind) = Kind::of(&head) else {
            let magic_le = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
            return Err(match magic_le {
                0xA1B2_CD34 | 0x34CD_B2A1 => {
                    bad("Kuznetzov's modified pcap format is not supported".into())
                }
                _ => CaptureError::NotCapture {
                    path: name.to_string(),
                    magic: format!("0x{magic_le:08x}"),
                },
            });
        };
        let stream = Cursor::new(head).chain(rest);
        let reader: Box<dyn PcapReaderIterator + Send> = match kind {
            Kind::Ng => {
                Box::new(PcapNGReader::new(BUFFER_SIZE, stream).map_err(|e| bad(describe(&e)))?)
            }
            Kind::Legacy => {
                Box::new(LegacyPcapReader::new(BUFFER_SIZE, stream).map_err(|e| bad(describe(&e)))?)
            }
        };
        Ok(Self::with_reader(name, Reader::Stream(reader), kind, None))
    }

    fn with_reader(
        name: &str,
        reader: Reader,
        kind: Kind,
        mapping: Option<Arc<SharedMap>>,
    ) -> CaptureFile {
        CaptureFile {
            path: name.to_string(),
            reader,
            format: Format::of(kind),
            stats: FileStats::default(),
            warnings: Vec::new(),
            link_types: Vec::new(),
            warned_links: Vec::new(),
            warned_snaplen: false,
            done: false,
            mapping,
        }
    }

    /// The file's memory map, when it is read in place: every frame's bytes
    /// then lie in it, and stay valid as long as the map is held.
    pub fn mapping(&self) -> Option<&Arc<SharedMap>> {
        self.mapping.as_ref()
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn stats(&self) -> &FileStats {
        &self.stats
    }

    pub fn warnings(&self) -> &[FileWarning] {
        &self.warnings
    }

    /// Link types of the file's interfaces, in order of appearance.
    pub fn link_types(&self) -> &[LinkType] {
        &self.link_types
    }

    /// Bytes of the (decompressed) stream consumed so far.
    pub fn position(&self) -> u64 {
        self.reader.consumed() as u64
    }

    /// Hands each frame of a supported link type to `f` until the file ends or
    /// `f` pauses. Frames of other link types are counted and skipped.
    pub fn run(&mut self, mut f: impl FnMut(Frame<'_>) -> Flow) -> Result<RunEnd, CaptureError> {
        while !self.done {
            if self.run_mapped_pcap(&mut f) == Flow::Pause {
                return Ok(RunEnd::Paused);
            }
            // One block the other way: a header, a pcapng block, a stream's
            // record, or the damage or end that stopped the loop above.
            let offset = self.reader.consumed() as u64;
            let reader = self.reader.get();
            let next = reader.next();
            let (len, block) = match next {
                Ok(ok) => ok,
                Err(PcapError::Eof) => {
                    self.done = true;
                    break;
                }
                Err(PcapError::Incomplete(_)) => {
                    if let Err(e) = reader.refill() {
                        let detail = describe(&e);
                        return Err(self.read_error(offset, detail));
                    }
                    continue;
                }
                Err(PcapError::BufferTooSmall) => {
                    let cap = reader.data().len().max(BUFFER_SIZE);
                    if cap < MAX_RECORD && reader.grow(cap * 2) {
                        continue;
                    }
                    self.stop(
                        offset,
                        "record claims more than 16 MiB: corrupt length field",
                    );
                    break;
                }
                Err(PcapError::UnexpectedEof) => {
                    self.stop(offset, "file ends inside this record (truncated capture)");
                    break;
                }
                Err(PcapError::ReadError) => {
                    return Err(self.read_error(offset, "I/O error".into()));
                }
                Err(e) => {
                    let detail = describe(&e);
                    if !self.skip_malformed_block(offset, &detail) {
                        break;
                    }
                    continue;
                }
            };
            let flow = handle_block(
                block,
                &mut self.format,
                &mut self.stats,
                &mut self.link_types,
                &mut FrameWarn {
                    path: &self.path,
                    offset,
                    warnings: &mut self.warnings,
                    warned_links: &mut self.warned_links,
                    warned_snaplen: &mut self.warned_snaplen,
                },
                &mut f,
            );
            // Without a shift: the buffer moves only its last partial record, on
            // refill, not half its bytes each time half of it is consumed.
            reader.consume_noshift(len);
            if flow == Flow::Pause {
                return Ok(RunEnd::Paused);
            }
        }
        Ok(RunEnd::Finished)
    }

    /// The records of a mapped pcap file, in a loop of their own (see
    /// [`MappedReader::next_record`]), until one pauses or the reader stops
    /// at what `run`'s general loop must handle.
    #[inline]
    fn run_mapped_pcap(&mut self, f: &mut impl FnMut(Frame<'_>) -> Flow) -> Flow {
        let (
            Reader::Mapped(reader),
            &Format::Legacy {
                link,
                nanos,
                snaplen,
            },
        ) = (&mut self.reader, &self.format)
        else {
            return Flow::Continue;
        };
        loop {
            let offset = reader.consumed() as u64;
            let Some((len, block)) = reader.next_record() else {
                return Flow::Continue;
            };
            let mut warn = FrameWarn {
                path: &self.path,
                offset,
                warnings: &mut self.warnings,
                warned_links: &mut self.warned_links,
                warned_snaplen: &mut self.warned_snaplen,
            };
            let flow = legacy_frame(&block, link, nanos, snaplen, &mut self.stats, &mut warn, f);
            reader.consume_noshift(len);
            if flow == Flow::Pause {
                return flow;
            }
        }
    }

    fn read_error(&self, offset: u64, detail: String) -> CaptureError {
        CaptureError::Read {
            path: self.path.clone(),
            offset,
            detail,
        }
    }

    fn stop(&mut self, offset: u64, message: &str) {
        self.stats.truncated = true;
        self.stats.bad_records += 1;
        self.done = true;
        self.warnings.push(FileWarning {
            path: self.path.clone(),
            offset: Some(offset),
            message: format!("{message}; reading of this file stops here"),
        });
    }

    /// A pcapng block that does not parse is skipped by its length field when
    /// that length is plausible; otherwise the file stops here.
    fn skip_malformed_block(&mut self, offset: u64, detail: &str) -> bool {
        let big_endian = match &self.format {
            Format::Ng { big_endian, .. } => *big_endian,
            Format::Legacy { .. } => {
                self.stop(offset, &format!("malformed record ({detail})"));
                return false;
            }
        };
        let data = self.reader.get().data();
        let len = data.get(4..8).map(|b| {
            let b = [b[0], b[1], b[2], b[3]];
            if big_endian {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        });
        match len {
            Some(len) if len >= 12 && len % 4 == 0 && (len as usize) <= data.len() => {
                self.stats.bad_records += 1;
                self.warnings.push(FileWarning {
                    path: self.path.clone(),
                    offset: Some(offset),
                    message: format!("malformed pcapng block of {len} bytes skipped ({detail})"),
                });
                self.reader.get().consume(len as usize);
                true
            }
            _ => {
                self.stop(offset, &format!("malformed pcapng block ({detail})"));
                false
            }
        }
    }
}

/// Where per-frame warnings go; a struct so `handle_block` can borrow the
/// reader's block and these fields at once.
struct FrameWarn<'w> {
    path: &'w str,
    offset: u64,
    warnings: &'w mut Vec<FileWarning>,
    warned_links: &'w mut Vec<u32>,
    warned_snaplen: &'w mut bool,
}

impl FrameWarn<'_> {
    fn unsupported_link(&mut self, link: LinkType, interface: usize) {
        let LinkType::Other(dlt) = link else { return };
        if self.warned_links.contains(&dlt) {
            return;
        }
        self.warned_links.push(dlt);
        self.warnings.push(FileWarning {
            path: self.path.to_string(),
            offset: None,
            message: format!(
                "interface {interface}: link type {dlt} is not decoded; its packets are counted as skipped"
            ),
        });
    }

    fn caplen_over_snaplen(&mut self, caplen: usize, snaplen: u32) {
        if *self.warned_snaplen {
            return;
        }
        *self.warned_snaplen = true;
        self.warnings.push(FileWarning {
            path: self.path.to_string(),
            offset: Some(self.offset),
            message: format!(
                "record captured length {caplen} exceeds the snaplen {snaplen}; analysed anyway"
            ),
        });
    }

    fn bad_record(&mut self, message: String) {
        self.warnings.push(FileWarning {
            path: self.path.to_string(),
            offset: Some(self.offset),
            message,
        });
    }
}

fn handle_block(
    block: PcapBlockOwned<'_>,
    format: &mut Format,
    stats: &mut FileStats,
    link_types: &mut Vec<LinkType>,
    warn: &mut FrameWarn<'_>,
    f: &mut impl FnMut(Frame<'_>) -> Flow,
) -> Flow {
    match (block, format) {
        (
            PcapBlockOwned::LegacyHeader(h),
            Format::Legacy {
                link,
                nanos,
                snaplen,
            },
        ) => {
            // The upper bits of the field carry FCS information, not the link type.
            *link = LinkType::from_dlt(h.network.0 as u32 & 0xFFFF);
            *nanos = h.is_nanosecond_precision();
            *snaplen = h.snaplen;
            link_types.push(*link);
            Flow::Continue
        }
        (
            PcapBlockOwned::Legacy(b),
            Format::Legacy {
                link,
                nanos,
                snaplen,
            },
        ) => legacy_frame(&b, *link, *nanos, *snaplen, stats, warn, f),
        (
            PcapBlockOwned::NG(block),
            Format::Ng {
                interfaces,
                big_endian,
            },
        ) => match block {
            Block::SectionHeader(shb) => {
                *big_endian = shb.big_endian();
                interfaces.clear();
                Flow::Continue
            }
            Block::InterfaceDescription(idb) => {
                let link = LinkType::from_dlt(idb.linktype.0 as u32);
                interfaces.push(Interface {
                    link,
                    snaplen: idb.snaplen,
                    resolution: idb.ts_resolution().unwrap_or(1_000_000).max(1),
                    offset_secs: idb.ts_offset(),
                });
                link_types.push(link);
                Flow::Continue
            }
            Block::EnhancedPacket(epb) => {
                let Some(iface) = interfaces.get(epb.if_id as usize).copied() else {
                    stats.packets += 1;
                    stats.bad_records += 1;
                    warn.bad_record(format!(
                        "packet names interface {} but the section has {}; skipped",
                        epb.if_id,
                        interfaces.len()
                    ));
                    return Flow::Continue;
                };
                let units = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                let ts = ng_time(units, iface.resolution, iface.offset_secs);
                let caplen = (epb.caplen as usize).min(epb.data.len());
                emit(
                    iface.link,
                    epb.if_id as usize,
                    ts,
                    &epb.data[..caplen],
                    epb.origlen,
                    stats,
                    warn,
                    f,
                )
            }
            Block::SimplePacket(spb) => {
                // A simple packet has no timestamp and belongs to interface 0.
                let Some(iface) = interfaces.first().copied() else {
                    stats.packets += 1;
                    stats.bad_records += 1;
                    warn.bad_record("simple packet before any interface; skipped".into());
                    return Flow::Continue;
                };
                let mut caplen = (spb.origlen as usize).min(spb.data.len());
                if iface.snaplen > 0 {
                    caplen = caplen.min(iface.snaplen as usize);
                }
                emit(
                    iface.link,
                    0,
                    0,
                    &spb.data[..caplen],
                    spb.origlen,
                    stats,
                    warn,
                    f,
                )
            }
            Block::Unknown(ub) if ub.block_type == 2 => {
                // Obsolete packet block (pcapng draft): if_id u16, drops u16,
                // ts_high, ts_low, caplen, len, data.
                let d = ub.data;
                let rd = |o: usize| -> Option<u32> {
                    let b: [u8; 4] = d.get(o..o + 4)?.try_into().ok()?;
                    Some(if *big_endian {
                        u32::from_be_bytes(b)
                    } else {
                        u32::from_le_bytes(b)
                    })
                };
                let if_id = d.get(0..2).map(|b| {
                    if *big_endian {
                        u16::from_be_bytes([b[0], b[1]])
                    } else {
                        u16::from_le_bytes([b[0], b[1]])
                    }
                });
                let parsed = (|| Some((if_id?, rd(4)?, rd(8)?, rd(12)?, rd(16)?)))();
                let Some((if_id, hi, lo, caplen, len)) = parsed else {
                    stats.packets += 1;
                    stats.bad_records += 1;
                    warn.bad_record("obsolete packet block too short; skipped".into());
                    return Flow::Continue;
                };
                let Some(iface) = interfaces.get(if_id as usize).copied() else {
                    stats.packets += 1;
                    stats.bad_records += 1;
                    warn.bad_record(format!("packet names unknown interface {if_id}; skipped"));
                    return Flow::Continue;
                };
                let data = &d[20.min(d.len())..];
                let data = &data[..(caplen as usize).min(data.len())];
                let ts = ng_time(
                    (u64::from(hi) << 32) | u64::from(lo),
                    iface.resolution,
                    iface.offset_secs,
                );
                emit(iface.link, if_id as usize, ts, data, len, stats, warn, f)
            }
            _ => Flow::Continue,
        },
        _ => Flow::Continue,
    }
}

/// A pcap record's frame.
#[inline]
fn legacy_frame(
    b: &LegacyPcapBlock<'_>,
    link: LinkType,
    nanos: bool,
    snaplen: u32,
    stats: &mut FileStats,
    warn: &mut FrameWarn<'_>,
    f: &mut impl FnMut(Frame<'_>) -> Flow,
) -> Flow {
    let frac = u64::from(b.ts_usec) * if nanos { 1 } else { 1_000 };
    let ts = u64::from(b.ts_sec) * 1_000_000_000 + frac;
    if snaplen > 0 && b.data.len() > snaplen as usize && snaplen >= 64 {
        warn.caplen_over_snaplen(b.data.len(), snaplen);
    }
    emit(link, 0, ts, b.data, b.origlen, stats, warn, f)
}

#[allow(clippy::too_many_arguments)]
#[inline]
fn emit(
    link: LinkType,
    interface: usize,
    ts: Nanos,
    data: &[u8],
    orig_len: u32,
    stats: &mut FileStats,
    warn: &mut FrameWarn<'_>,
    f: &mut impl FnMut(Frame<'_>) -> Flow,
) -> Flow {
    stats.packets += 1;
    stats.bytes += data.len() as u64;
    if !link.is_supported() {
        stats.skipped_link += 1;
        warn.unsupported_link(link, interface);
        return Flow::Continue;
    }
    f(Frame {
        ts,
        link,
        data,
        orig_len,
    })
}

/// Converts pcapng timestamp units to nanoseconds; saturates rather than wraps.
fn ng_time(units: u64, resolution: u64, offset_secs: i64) -> Nanos {
    let ns = u128::from(units) * 1_000_000_000 / u128::from(resolution);
    let ns = ns as i128 + i128::from(offset_secs) * 1_000_000_000;
    ns.clamp(0, i128::from(u64::MAX)) as u64
}

/// Reads up to `PROBE_LEN` bytes so the format can be recognised, then hands
/// back those bytes and the rest of the stream.
fn probe(
    name: &str,
    mut input: Box<dyn Read + Send>,
) -> Result<(Vec<u8>, Box<dyn Read + Send>), CaptureError> {
    let mut head = Vec::with_capacity(PROBE_LEN);
    (&mut input)
        .take(PROBE_LEN as u64)
        .read_to_end(&mut head)
        .map_err(|source| {
            if source.raw_os_error() == Some(21) {
                CaptureError::Directory { path: name.into() }
            } else {
                CaptureError::Open {
                    path: name.into(),
                    source,
                }
            }
        })?;
    if head.is_empty() {
        return Err(CaptureError::Empty { path: name.into() });
    }
    if head.len() < 4 {
        return Err(CaptureError::NotCapture {
            path: name.into(),
            magic: format!("{} bytes only", head.len()),
        });
    }
    Ok((head, input))
}

fn describe(e: &PcapError<&[u8]>) -> String {
    match e {
        PcapError::Eof => "unexpected end of file".into(),
        PcapError::UnexpectedEof | PcapError::Incomplete(_) => "truncated".into(),
        PcapError::BufferTooSmall => "record too large".into(),
        PcapError::ReadError => "read error".into(),
        PcapError::HeaderNotRecognized => "header not recognised".into(),
        PcapError::NomError(_, kind) | PcapError::OwnedNomError(_, kind) => {
            format!("parse error: {kind:?}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pcap_header(magic: u32, link: u32, big: bool) -> Vec<u8> {
        let mut v = Vec::new();
        let w32 = |v: &mut Vec<u8>, x: u32| {
            v.extend_from_slice(&if big {
                x.to_be_bytes()
            } else {
                x.to_le_bytes()
            })
        };
        w32(&mut v, magic);
        v.extend_from_slice(&if big { [0, 2, 0, 4] } else { [2, 0, 4, 0] });
        w32(&mut v, 0);
        w32(&mut v, 0);
        w32(&mut v, 65535);
        w32(&mut v, link);
        v
    }

    fn record(v: &mut Vec<u8>, sec: u32, frac: u32, data: &[u8], big: bool) {
        for x in [sec, frac, data.len() as u32, data.len() as u32] {
            v.extend_from_slice(&if big {
                x.to_be_bytes()
            } else {
                x.to_le_bytes()
            });
        }
        v.extend_from_slice(data);
    }

    fn frames_of(cf: &mut CaptureFile) -> Vec<(Nanos, Vec<u8>)> {
        let mut out = Vec::new();
        cf.run(|fr| {
            out.push((fr.ts, fr.data.to_vec()));
            Flow::Continue
        })
        .unwrap();
        out
    }

    /// Reads `bytes` as a stream and, written to a file, through the memory
    /// map (when they start like a pcap or pcapng file): both readers must
    /// give the same frames, counters and warnings. Returns the stream's.
    fn read_all(bytes: Vec<u8>) -> (Vec<(Nanos, Vec<u8>)>, CaptureFile) {
        let mut cf =
            CaptureFile::from_reader("t.pcap", Box::new(Cursor::new(bytes.clone()))).unwrap();
        let out = frames_of(&mut cf);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.pcap");
        std::fs::write(&path, &bytes).unwrap();
        let mut mapped = CaptureFile::open(path.to_str().unwrap()).unwrap();
        let gz = bytes.starts_with(&[0x1f, 0x8b]);
        assert_eq!(mapped.mapping().is_some(), !gz, "mapped unless compressed");
        assert_eq!(frames_of(&mut mapped), out);
        assert_eq!(mapped.stats(), cf.stats());
        let warnings = |c: &CaptureFile| -> Vec<_> {
            c.warnings()
                .iter()
                .map(|w| (w.offset, w.message.clone()))
                .collect()
        };
        assert_eq!(warnings(&mapped), warnings(&cf));
        (out, cf)
    }

    #[test]
    fn both_byte_orders_and_nanoseconds() {
        for (magic, big, scale) in [
            (0xA1B2_C3D4, false, 1_000),
            (0xA1B2_C3D4, true, 1_000),
            (0xA1B2_3C4D, false, 1),
            (0xA1B2_3C4D, true, 1),
        ] {
            let mut f = pcap_header(magic, 1, big);
            record(&mut f, 10, 500, &[1, 2, 3], big);
            record(&mut f, 11, 0, &[4; 60], big);
            let (frames, cf) = read_all(f);
            assert_eq!(frames.len(), 2);
            assert_eq!(frames[0].0, 10_000_000_000 + 500 * scale);
            assert_eq!(frames[0].1, vec![1, 2, 3]);
            assert_eq!(cf.stats().packets, 2);
            assert!(cf.warnings().is_empty());
        }
    }

    #[test]
    fn truncated_record_keeps_earlier_ones_and_names_offset() {
        let mut f = pcap_header(0xA1B2_C3D4, 1, false);
        record(&mut f, 1, 0, &[7; 40], false);
        record(&mut f, 2, 0, &[8; 40], false);
        f.truncate(f.len() - 10);
        let (frames, cf) = read_all(f);
        assert_eq!(frames.len(), 1);
        assert!(cf.stats().truncated);
        let w = &cf.warnings()[0];
        assert_eq!(w.offset, Some(24 + 16 + 40));
        assert!(w.to_string().contains("t.pcap"), "{w}");
    }

    #[test]
    fn record_over_the_snaplen_is_warned_once_and_analysed() {
        let mut f = pcap_header(0xA1B2_C3D4, 1, false);
        f[16..20].copy_from_slice(&100u32.to_le_bytes());
        record(&mut f, 1, 0, &[7; 40], false);
        record(&mut f, 2, 0, &[8; 200], false);
        record(&mut f, 3, 0, &[9; 300], false);
        let (frames, cf) = read_all(f);
        assert_eq!(frames.len(), 3);
        assert_eq!(cf.stats().bad_records, 0);
        assert_eq!(cf.warnings().len(), 1);
        let w = &cf.warnings()[0];
        assert_eq!(w.offset, Some(24 + 16 + 40));
        assert!(w.message.contains("exceeds the snaplen 100"), "{w}");
    }

    #[test]
    fn absurd_caplen_stops_without_allocating_it() {
        let mut f = pcap_header(0xA1B2_C3D4, 1, false);
        record(&mut f, 1, 0, &[7; 40], false);
        for x in [2u32, 0, 0xFFFF_FFF0, 0xFFFF_FFF0] {
            f.extend_from_slice(&x.to_le_bytes());
        }
        f.extend_from_slice(&[0; 100]);
        let (frames, cf) = read_all(f);
        assert_eq!(frames.len(), 1);
        assert!(cf.stats().truncated);
        assert_eq!(cf.warnings()[0].offset, Some(24 + 56));
    }

    #[test]
    fn gzip_is_recognised_by_magic() {
        use std::io::Write;
        let mut f = pcap_header(0xA1B2_C3D4, 1, false);
        record(&mut f, 1, 0, &[9; 30], false);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&f).unwrap();
        let (frames, _) = read_all(gz.finish().unwrap());
        assert_eq!(frames.len(), 1);
    }

    #[test]
    fn not_a_capture_and_empty() {
        let e = CaptureFile::from_reader("x", Box::new(Cursor::new(b"hello world".to_vec())));
        assert!(matches!(e, Err(CaptureError::NotCapture { .. })));
        let e = CaptureFile::from_reader("x", Box::new(Cursor::new(Vec::new())));
        assert!(matches!(e, Err(CaptureError::Empty { .. })));
        let e =
            CaptureFile::from_reader("x", Box::new(Cursor::new(vec![0xd4, 0xc3, 0xb2, 0xa1, 2])));
        assert!(
            matches!(e, Err(CaptureError::BadHeader { .. })),
            "{:?}",
            e.err()
        );
    }

    #[test]
    fn unsupported_link_type_is_counted_and_warned_once() {
        let mut f = pcap_header(0xA1B2_C3D4, 127, false);
        record(&mut f, 1, 0, &[0; 20], false);
        record(&mut f, 1, 0, &[0; 20], false);
        let (frames, cf) = read_all(f);
        assert!(frames.is_empty());
        assert_eq!(cf.stats().skipped_link, 2);
        assert_eq!(cf.warnings().len(), 1);
        assert!(cf.warnings()[0].message.contains("127"));
    }

    #[test]
    fn pause_resumes_with_next_frame() {
        let mut f = pcap_header(0xA1B2_C3D4, 1, false);
        for i in 0..3 {
            record(&mut f, i, 0, &[i as u8; 20], false);
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.pcap");
        std::fs::write(&path, &f).unwrap();
        let mapped = CaptureFile::open(path.to_str().unwrap()).unwrap();
        assert!(mapped.mapping().is_some());
        let streamed = CaptureFile::from_reader("t", Box::new(Cursor::new(f))).unwrap();
        for mut cf in [streamed, mapped] {
            let mut seen = Vec::new();
            while cf
                .run(|fr| {
                    seen.push(fr.data[0]);
                    Flow::Pause
                })
                .unwrap()
                == RunEnd::Paused
            {}
            assert_eq!(seen, vec![0, 1, 2]);
        }
    }
}
