//! Reading a capture file through a memory map instead of `read(2)`.
//!
//! `read(2)` copies every byte of the file out of the page cache (on a
//! page-cached 880 MB capture, 17 % of a one-thread analysis), though the
//! pipeline looks at little more than the headers of most packets. Mapped, a
//! record is parsed where the page cache holds it. Two things make that pay:
//!
//! - **Prefetching.** The headers of consecutive records are a few hundred
//!   bytes apart, a stride the hardware prefetcher does not follow, so each
//!   would be a miss to memory (measured: slower than `read(2)`). The reader
//!   prefetches the cache lines just ahead of the record it hands out.
//! - **Releasing.** Mapped pages that were touched count in the resident set
//!   until unmapped, so the pages behind the reader are dropped from the
//!   mapping every few MiB (`MADV_DONTNEED`: the page cache keeps them). Not
//!   behind the oldest frame still waiting in a batch for a worker, though:
//!   a worker reading a released page maps it back in for good.
//!
//! Used for regular files holding uncompressed pcap or pcapng; standard input,
//! pipes and gzip go through `pcap-parser`'s streaming readers. Parsing is the
//! same `pcap-parser` record parsers either way. As with any mapped file, a
//! file truncated by another process while it is read ends the run with
//! SIGBUS; captures being written are appended to, not truncated.

use std::fs::File;
use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use memmap2::{Mmap, UncheckedAdvice};

use super::file::{Kind, MAX_RECORD};
use pcap_parser::nom;
use pcap_parser::pcapng::{Block, parse_block_be, parse_block_le, parse_sectionheaderblock};
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{
    LegacyPcapBlock, PcapBlockOwned, PcapError, PcapHeader, parse_pcap_frame, parse_pcap_frame_be,
    parse_pcap_header,
};

/// How far ahead of the current record cache lines are prefetched. Measured on
/// home-mix (records of 350 bytes on average): 512 B to 2 KiB are equally
/// fast, 16 KiB loses most of the gain (lines are evicted before use).
const PREFETCH_AHEAD: usize = 1024;
/// Pages are released in steps of this many bytes, a step behind the reader
/// and behind the oldest frame a worker has still to read (see `SharedMap`).
const RELEASE_STEP: usize = 4 << 20;
const CACHE_LINE: usize = 64;

enum Parser {
    /// The header is handed out as the first block, as `LegacyPcapReader` does.
    Legacy {
        header: PcapHeader,
        big_endian: bool,
    },
    Ng {
        big_endian: bool,
    },
}

/// A capture file's map, shared by its reader and the pipeline, which hands
/// frames to other threads as offsets into it instead of copies.
pub struct SharedMap {
    bytes: Mmap,
    /// Offset of the oldest frame handed on and not yet read: pages are
    /// released only below it. `usize::MAX` while none is.
    in_use_from: AtomicUsize,
}

impl SharedMap {
    pub fn new(bytes: Mmap) -> SharedMap {
        SharedMap {
            bytes,
            in_use_from: AtomicUsize::new(usize::MAX),
        }
    }

    /// Frames from `offset` on are still to be read by someone other than
    /// the reader (`usize::MAX`: none are).
    pub fn set_in_use_from(&self, offset: usize) {
        self.in_use_from.store(offset, Ordering::Relaxed);
    }
}

impl Deref for SharedMap {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

pub struct MappedReader {
    map: Arc<SharedMap>,
    parser: Parser,
    /// Offset of the next record.
    pos: usize,
    /// Bytes below this offset have been prefetched.
    prefetched: usize,
    /// Bytes below this offset have been released from the mapping.
    released: usize,
}

impl MappedReader {
    /// Maps `file` when it is a regular file that starts like an uncompressed
    /// pcap (standard, either byte order) or pcapng file. `None` otherwise, or
    /// when it cannot be mapped: the caller then reads it as a stream, which
    /// also gives the error messages for what is not a capture.
    pub fn map(file: &File) -> Option<(MappedReader, Kind)> {
        let meta = file.metadata().ok()?;
        if !meta.is_file() || meta.len() == 0 || usize::try_from(meta.len()).is_err() {
            return None;
        }
        // SAFETY: the map is only read; see the module comment on truncation.
        let map = unsafe { Mmap::map(file) }.ok()?;
        let kind = Kind::of(&map)?;
        // Headers that do not parse are left to the streaming reader's messages.
        let parser = match kind {
            Kind::Legacy => {
                let (_, header) = parse_pcap_header(&map).ok()?;
                let big_endian = header.is_bigendian();
                Parser::Legacy { header, big_endian }
            }
            Kind::Ng => {
                parse_sectionheaderblock(&map).ok()?;
                Parser::Ng { big_endian: false }
            }
        };
        let _ = map.advise(memmap2::Advice::Sequential);
        let reader = MappedReader {
            map: Arc::new(SharedMap::new(map)),
            parser,
            pos: 0,
            prefetched: 0,
            released: 0,
        };
        Some((reader, kind))
    }

    pub fn mapping(&self) -> Arc<SharedMap> {
        self.map.clone()
    }

    /// The next pcap record, parsed in place, and its length: the loop of
    /// `CaptureFile::run` for mapped pcap files, which takes records straight
    /// from here rather than as [`PcapBlockOwned`]s through the
    /// `PcapReaderIterator` object (a call that cannot be inlined, and a
    /// large enum returned through memory and read back in pieces of other
    /// sizes than it was written in, which stalled every record). `None` at
    /// the file header, at the end, and at a record that does not parse:
    /// `next` hands out or reports those.
    #[inline]
    pub fn next_record(&mut self) -> Option<(usize, LegacyPcapBlock<'_>)> {
        let Parser::Legacy { big_endian, .. } = self.parser else {
            return None;
        };
        if self.pos == 0 {
            return None;
        }
        let data = &self.map[self.pos..];
        let (rem, block) = legacy_record(data, big_endian).ok()?;
        Some((data.len() - rem.len(), block))
    }

    fn prefetch_ahead(&mut self) {
        let want = (self.pos + PREFETCH_AHEAD).min(self.map.len());
        let base = self.map.as_ptr();
        while self.prefetched < want {
            // `wrapping_add` stays inside the map: prefetched < want <= len.
            prefetch(base.wrapping_add(self.prefetched));
            self.prefetched += CACHE_LINE;
        }
    }

    /// Releases whole steps that lie at least one step behind the reader.
    fn release_behind(&mut self) {
        if self.pos < self.released + 2 * RELEASE_STEP
            || self.map.in_use_from.load(Ordering::Relaxed) < self.released + 2 * RELEASE_STEP
        {
            return;
        }
        // SAFETY: the file is mapped read-only and never written through the
        // map, so dropped pages are faulted back in from the page cache with
        // the same bytes if anything still reads them. Nothing should: the
        // pipeline marks where the frames it handed on begin.
        let _ = unsafe {
            self.map.bytes.unchecked_advise_range(
                UncheckedAdvice::DontNeed,
                self.released,
                RELEASE_STEP,
            )
        };
        self.released += RELEASE_STEP;
    }
}

#[inline]
fn legacy_record(
    data: &[u8],
    big_endian: bool,
) -> nom::IResult<&[u8], LegacyPcapBlock<'_>, PcapError<&[u8]>> {
    if big_endian {
        parse_pcap_frame_be(data)
    } else {
        parse_pcap_frame(data)
    }
}

impl PcapReaderIterator for MappedReader {
    fn next(&mut self) -> Result<(usize, PcapBlockOwned<'_>), PcapError<&[u8]>> {
        if let Parser::Legacy { header, .. } = &self.parser
            && self.pos == 0
        {
            return Ok((header.size(), PcapBlockOwned::from(header.clone())));
        }
        let data = &self.map[self.pos..];
        if data.is_empty() {
            return Err(PcapError::Eof);
        }
        let parsed = match &mut self.parser {
            Parser::Legacy { big_endian, .. } => {
                legacy_record(data, *big_endian).map(|(rem, b)| (rem, b.into()))
            }
            Parser::Ng { big_endian } => {
                let parse = if *big_endian {
                    parse_block_be
                } else {
                    parse_block_le
                };
                parse(data).map(|(rem, b)| {
                    if let Block::SectionHeader(shb) = &b {
                        *big_endian = shb.big_endian();
                    }
                    (rem, b.into())
                })
            }
        };
        match parsed {
            Ok((rem, block)) => Ok((data.len() - rem.len(), block)),
            Err(nom::Err::Error(e)) | Err(nom::Err::Failure(e)) => Err(e),
            // A length no record has is a corrupt header, as the streaming
            // reader reports it (it will not grow its buffer that far).
            Err(nom::Err::Incomplete(nom::Needed::Size(n))) if n.get() > MAX_RECORD => {
                Err(PcapError::BufferTooSmall)
            }
            // The whole file is in view: wanting more means it ends mid-record.
            Err(nom::Err::Incomplete(_)) => Err(PcapError::UnexpectedEof),
        }
    }

    fn consume(&mut self, offset: usize) {
        self.consume_noshift(offset);
    }

    #[inline]
    fn consume_noshift(&mut self, offset: usize) {
        self.pos = (self.pos + offset).min(self.map.len());
        self.prefetch_ahead();
        self.release_behind();
    }

    fn consumed(&self) -> usize {
        self.pos
    }

    fn refill(&mut self) -> Result<(), PcapError<&[u8]>> {
        Ok(())
    }

    fn position(&self) -> usize {
        self.pos
    }

    fn grow(&mut self, _new_size: usize) -> bool {
        false
    }

    fn data(&self) -> &[u8] {
        &self.map[self.pos..]
    }

    fn reader_exhausted(&self) -> bool {
        true
    }
}

/// A hint to load the cache line holding `p`; never faults, whatever `p` is.
#[inline(always)]
pub fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch does not access memory architecturally.
    unsafe {
        core::arch::x86_64::_mm_prefetch(p.cast(), core::arch::x86_64::_MM_HINT_T0)
    };
    #[cfg(target_arch = "aarch64")]
    // SAFETY: as above; `prfm` is a hint.
    unsafe {
        core::arch::asm!("prfm pldl1keep, [{0}]", in(reg) p, options(nostack, readonly, preserves_flags))
    };
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    let _ = p;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pcap file of `records` 1,000-byte records, mapped.
    fn mapped(records: usize) -> (tempfile::TempDir, MappedReader) {
        let mut v = Vec::new();
        for x in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65535, 1] {
            v.extend_from_slice(&x.to_le_bytes());
        }
        for i in 0..records as u32 {
            for x in [i, 0, 1000, 1000] {
                v.extend_from_slice(&x.to_le_bytes());
            }
            v.extend_from_slice(&[0u8; 1000]);
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.pcap");
        std::fs::write(&path, v).unwrap();
        let (reader, _) = MappedReader::map(&File::open(&path).unwrap()).unwrap();
        (dir, reader)
    }

    fn read_through(r: &mut MappedReader) -> usize {
        let mut n = 0;
        loop {
            match r.next() {
                Ok((len, _)) => {
                    r.consume(len);
                    n += 1;
                }
                Err(PcapError::Eof) => return n,
                Err(e) => panic!("{e:?}"),
            }
        }
    }

    #[test]
    fn pages_behind_the_reader_are_released() {
        let (_dir, mut r) = mapped(20_000);
        assert_eq!(read_through(&mut r), 20_001, "header and records");
        assert!(r.released >= 12 << 20, "released {}", r.released);
        assert!(r.released + 2 * RELEASE_STEP > r.pos);
    }

    #[test]
    fn pages_a_worker_has_still_to_read_are_kept() {
        let (_dir, mut r) = mapped(20_000);
        r.mapping().set_in_use_from(5 << 20);
        read_through(&mut r);
        // Only whole steps a step below the oldest frame in use.
        assert_eq!(r.released, 0);
        let (_dir, mut r) = mapped(20_000);
        r.mapping().set_in_use_from(10 << 20);
        read_through(&mut r);
        assert_eq!(r.released, RELEASE_STEP);
    }
}
