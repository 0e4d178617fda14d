//! The whole offline pipeline: capture → decode → flows → analyzers →
//! inventory, on one thread or sharded over several.
//!
//! With one thread, frames go from the reader's buffer straight into the
//! worker: no channel, no copy. With N threads, the reading thread finds each
//! frame's address pair and picks a worker by a symmetric hash of it (so both
//! directions of a conversation, fragments included, meet in one worker). It
//! runs worker 0 itself on the frames it owns, and puts the others in their
//! worker's batch: as offsets when the file is memory-mapped (the workers read
//! the bytes from the map), as copies otherwise. Batches travel through
//! bounded channels and come back empty to be reused: no allocation per packet.

mod shard;
mod worker;

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use crossbeam_channel::{Receiver, Sender, bounded};

use crate::capture::{CaptureError, Frame, LinkType, Nanos, SharedMap, Timeline, prefetch};
use crate::detect::scan::ScanDetector;
use crate::event::Event;
use crate::flow::{ALL_BUCKETS, FlowStats, SHARD_BUCKETS as BUCKETS, Timeouts};
use crate::inventory::{Device, DeviceKey};
use crate::netconf::HomeNets;
use crate::proto::Registry;

pub use worker::{Worker, WorkerResult};

/// Flows held at once across all workers. About 160 bytes each with the map
/// entry: 24 MiB at the cap.
pub const MAX_FLOWS: usize = 128 * 1024;
/// Unanswered SYNs remembered across all workers (about 80 bytes each).
pub const SYN_CACHE: usize = 64 * 1024;
/// Frames per batch sent to a worker. Each batch costs the reader a wake-up of
/// its worker now and then; with frames passed as offsets a batch is small, so
/// it can be long (2,048 and 8,192 were 3-5 % faster than 512 on home-mix).
const BATCH_FRAMES: usize = 8192;
/// Bytes per batch (a batch is sent when either limit is reached). Mapped
/// frames count too: it keeps the workers within a few MiB of the reader,
/// short of the pages it releases behind it (`capture::mapped`).
const BATCH_BYTES: usize = 512 * 1024;
/// How many frames ahead a worker prefetches a batched frame's headers.
const PREFETCH_FRAMES: usize = 4;
/// Batches in flight per worker: bounds the memory between reader and workers
/// to about `(workers - 1) * (QUEUE_DEPTH + 1) * BATCH_BYTES`.
const QUEUE_DEPTH: usize = 4;

/// Settings for one analysis run.
#[derive(Clone, Debug)]
pub struct Config {
    pub threads: usize,
    pub home: HomeNets,
    pub max_flows: usize,
    /// Devices each worker's inventory holds at most.
    pub max_devices: usize,
    pub syn_cache: usize,
    pub timeouts: Timeouts,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            threads: 1,
            home: HomeNets::default(),
            max_flows: MAX_FLOWS,
            max_devices: crate::inventory::MAX_DEVICES,
            syn_cache: SYN_CACHE,
            timeouts: Timeouts::default(),
        }
    }
}

/// Packet-level counters of a run (summed over workers).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub packets: u64,
    /// Bytes on the wire.
    pub bytes: u64,
    pub decode_errors: u64,
    pub fragments: u64,
    pub flows: FlowStats,
}

impl Counters {
    fn add(&mut self, o: &Counters) {
        self.packets += o.packets;
        self.bytes += o.bytes;
        self.decode_errors += o.decode_errors;
        self.fragments += o.fragments;
        self.flows.flows += o.flows.flows;
        self.flows.tcp += o.flows.tcp;
        self.flows.udp += o.flows.udp;
        self.flows.unanswered_syns += o.flows.unanswered_syns;
        self.flows.evicted += o.flows.evicted;
        self.flows.expired += o.flows.expired;
        self.flows.peak += o.flows.peak;
    }
}

/// Everything a run found: counters and events merged over the workers,
/// devices still in each worker's list.
pub struct Analysis {
    pub counters: Counters,
    /// Each worker's devices in key order, merged as the report reads them
    /// (`inventory::key_chunks`).
    pub devices: Vec<Vec<(DeviceKey, Device)>>,
    /// Events of every kind (the facts went to the inventory).
    pub events: Vec<Event>,
    /// The workers' scan findings, already turned into `events`: handed on
    /// only to be freed late, with the devices once the report is written
    /// (freeing them here took 4-5 ms of home-mix's run on one core).
    pub spent_scans: Vec<ScanDetector>,
    pub first_ts: Option<Nanos>,
    pub last_ts: Option<Nanos>,
}

/// Called now and then with the captured bytes read so far.
pub type ProgressFn<'a> = &'a mut dyn FnMut(u64);

/// Runs the pipeline over a timeline of capture files.
pub fn run(
    timeline: &mut Timeline,
    config: Config,
    registry: Registry,
    progress: ProgressFn<'_>,
) -> Result<Analysis, CaptureError> {
    let config = Arc::new(config);
    let registry = Arc::new(registry);
    let mut span = Span::default();
    let results = if config.threads <= 1 {
        let mut w = Worker::new(config.clone(), registry, ALL_BUCKETS);
        let mut read = 0u64;
        timeline.run(|fr| {
            span.see(fr.ts);
            read += fr.data.len() as u64;
            if span.frames.is_multiple_of(65_536) {
                progress(read);
            }
            w.frame(&fr);
        })?;
        vec![w.finish()]
    } else {
        run_sharded(timeline, &config, &registry, &mut span, progress)?
    };
    let mut counters = Counters::default();
    let mut devices = Vec::with_capacity(results.len());
    let mut scans = Vec::with_capacity(results.len());
    let mut events = Vec::new();
    for r in results {
        counters.add(&r.counters);
        devices.push(r.devices);
        scans.push(r.scans);
        events.extend(r.out.events);
    }
    let events = if config.threads > 1 {
        // With the workers done, another core loads most of the signature
        // tables the report reads (device rules 7 ms, support periods 3 ms)
        // while this one merges the scan findings (5-6 ms of home-mix) and
        // loads the OUI table (6 ms). The findings are merged into this
        // thread's own worker's and the others' are not freed here: done on
        // the other core, or freed at once, the merge wrote into and freed
        // to the heap the other thread was allocating from, and the two
        // contended for its lock (10-13 ms). The devices are merged as they
        // are reported.
        std::thread::scope(|s| {
            let loading = s.spawn(|| {
                crate::signatures::devices::DeviceRules::builtin();
                crate::signatures::support::SupportDb::builtin();
                crate::signatures::vendors::VendorDb::builtin();
            });
            let events = finish_events(&mut scans, events, &config.home);
            crate::signatures::oui::OuiDb::builtin();
            loading
                .join()
                .unwrap_or_else(|e| std::panic::resume_unwind(e));
            events
        })
    } else {
        finish_events(&mut scans, events, &config.home)
    };
    Ok(Analysis {
        counters,
        devices,
        events,
        spent_scans: scans,
        first_ts: span.first,
        last_ts: span.last,
    })
}

/// The workers' events with those of their merged scan findings: scans,
/// brute force, and the links between them.
fn finish_events(
    scans: &mut [ScanDetector],
    mut events: Vec<Event>,
    home: &HomeNets,
) -> Vec<Event> {
    if let Some((all, others)) = scans.split_first_mut() {
        for s in others {
            all.merge(s);
        }
        events.extend(all.events(home));
    }
    let brute = crate::detect::credentials::bruteforce_events(&events, home);
    events.extend(brute);
    crate::detect::credentials::link_scans_and_bruteforce(&mut events);
    events
}

#[derive(Default)]
struct Span {
    first: Option<Nanos>,
    last: Option<Nanos>,
    frames: u64,
}

impl Span {
    #[inline]
    fn see(&mut self, ts: Nanos) {
        self.frames += 1;
        // A pcapng simple packet has no time (0): it does not move the span.
        if ts == 0 {
            return;
        }
        self.first = Some(self.first.map_or(ts, |f| f.min(ts)));
        self.last = Some(self.last.map_or(ts, |l| l.max(ts)));
    }
}

/// Frames on their way to another thread, reused batch after batch: no
/// allocation per packet. A frame of a memory-mapped capture file travels as
/// its offset in the map (the reader's own copy of nothing); any other (a
/// stream reader's buffer, libpcap's in live capture) is copied in.
pub struct Batch {
    max_frames: usize,
    max_bytes: usize,
    /// Bytes of the frames held, copied or not.
    bytes: usize,
    data: Vec<u8>,
    /// The capture file's map, once a frame in it has been pushed.
    map: Option<Arc<SharedMap>>,
    /// (timestamp, link type, where the bytes are, captured length, wire length)
    frames: Vec<(Nanos, LinkType, At, u32, u32)>,
}

/// Where a batched frame's bytes are.
#[derive(Clone, Copy)]
enum At {
    /// Offset in the batch's own buffer.
    Copied(u32),
    /// Offset in the capture file's map.
    Mapped(usize),
}

impl Default for Batch {
    fn default() -> Self {
        Batch::new()
    }
}

impl Batch {
    pub fn new() -> Batch {
        Batch::with_limits(BATCH_FRAMES, BATCH_BYTES)
    }

    /// A batch that is full at `frames` frames or `bytes` bytes (the frame
    /// that fills it may go past; room for a typical one is kept, a jumbo
    /// one grows the buffer).
    pub fn with_limits(frames: usize, bytes: usize) -> Batch {
        Batch {
            max_frames: frames,
            max_bytes: bytes,
            bytes: 0,
            data: Vec::with_capacity(bytes + bytes.min(65_536)),
            map: None,
            frames: Vec::with_capacity(frames),
        }
    }

    pub fn full(&self) -> bool {
        self.frames.len() >= self.max_frames || self.bytes >= self.max_bytes
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Copies the frame in.
    #[inline]
    pub fn push(&mut self, fr: &Frame<'_>) {
        let off = self.data.len() as u32;
        self.data.extend_from_slice(fr.data);
        self.add(fr, At::Copied(off));
    }

    /// Records where in `map` the frame lies, or copies it in if it is not
    /// there (or the batch already refers to another map).
    #[inline]
    pub fn push_mapped(&mut self, fr: &Frame<'_>, map: &Arc<SharedMap>) {
        let offset = (fr.data.as_ptr() as usize).wrapping_sub(map.as_ptr() as usize);
        let inside = offset <= map.len() && fr.data.len() <= map.len() - offset;
        let same = self.map.as_ref().is_none_or(|m| Arc::ptr_eq(m, map));
        if !(inside && same) {
            return self.push(fr);
        }
        if self.map.is_none() {
            self.map = Some(map.clone());
        }
        self.add(fr, At::Mapped(offset));
    }

    /// Where in the map the batch's first mapped frame lies.
    fn first_mapped(&self) -> Option<usize> {
        self.frames.iter().find_map(|f| match f.2 {
            At::Mapped(off) => Some(off),
            At::Copied(_) => None,
        })
    }

    #[inline]
    fn add(&mut self, fr: &Frame<'_>, at: At) {
        self.bytes += fr.data.len();
        self.frames
            .push((fr.ts, fr.link, at, fr.data.len() as u32, fr.orig_len));
    }

    /// Hands each frame to `f`, then empties the batch for reuse.
    pub fn drain(&mut self, mut f: impl FnMut(&Frame<'_>)) {
        let map: &[u8] = self.map.as_deref().map_or(&[], |m| &m[..]);
        let bytes = |at: At, len: u32| match at {
            At::Copied(off) => &self.data[off as usize..][..len as usize],
            At::Mapped(off) => &map[off..][..len as usize],
        };
        for (i, &(ts, link, at, len, orig_len)) in self.frames.iter().enumerate() {
            // The reader touched a mapped frame on its own core: fetch the
            // headers of the frame a few ahead while this one is processed.
            if let Some(&(_, _, at, len, _)) = self.frames.get(i + PREFETCH_FRAMES) {
                let ahead = bytes(at, len);
                prefetch(ahead.as_ptr());
                prefetch(ahead.as_ptr().wrapping_add(64));
            }
            let data = bytes(at, len);
            f(&Frame {
                ts,
                link,
                data,
                orig_len,
            });
        }
        self.frames.clear();
        self.data.clear();
        self.bytes = 0;
    }
}

/// Which worker owns each bucket. Worker 0 runs on the reading thread, which
/// also reads and hashes every frame and batches the others' frames, so it
/// gets a smaller share, the other workers splitting the rest evenly. On two
/// cores the reader takes 24 of the 64 buckets: it works through its own
/// frames while the worker is behind (see `run_sharded`), and at 24 it then
/// waits 1-3 ms of a home-mix run for the worker, at 22 16-33 ms (the
/// worker then waits ~20 ms for the reader; at 26 and more, 40-100 ms).
/// Mirai-scan would take still more. With three or more workers the reader
/// has enough to do reading.
fn bucket_owners(n: usize) -> [u8; BUCKETS] {
    let mut owners = [0u8; BUCKETS];
    let own = if n == 2 { 24 } else { 0 };
    for (b, o) in owners.iter_mut().enumerate().skip(own) {
        *o = (1 + (b - own) * (n - 1) / (BUCKETS - own)) as u8;
    }
    owners
}

/// The buckets `worker` owns, as a mask.
fn mask_of(owners: &[u8; BUCKETS], worker: usize) -> u64 {
    owners
        .iter()
        .enumerate()
        .filter(|&(_, &o)| usize::from(o) == worker)
        .fold(0, |m, (b, _)| m | 1 << b)
}

/// The batches sent to one worker that it has not read yet, by the map
/// offset of their first frame: pages from the oldest on stay mapped.
#[derive(Default)]
struct InFlight {
    firsts: VecDeque<usize>,
    sent: usize,
    /// Batches the worker has read (it counts them).
    drained: Arc<AtomicUsize>,
}

impl InFlight {
    fn sent(&mut self, b: &Batch) {
        self.firsts
            .push_back(b.first_mapped().unwrap_or(usize::MAX));
        self.sent += 1;
    }

    /// The first offset of the oldest batch not yet read.
    fn oldest(&mut self) -> Option<usize> {
        let drained = self.drained.load(Ordering::Acquire);
        while self.sent - self.firsts.len() < drained {
            self.firsts.pop_front();
        }
        self.firsts.front().copied()
    }
}

fn run_sharded(
    timeline: &mut Timeline,
    config: &Arc<Config>,
    registry: &Arc<Registry>,
    span: &mut Span,
    progress: ProgressFn<'_>,
) -> Result<Vec<WorkerResult>, CaptureError> {
    let n = config.threads;
    let owners = bucket_owners(n);
    let mut senders: Vec<Sender<Batch>> = Vec::with_capacity(n - 1);
    let mut handles = Vec::with_capacity(n - 1);
    let mut spare: Vec<Receiver<Batch>> = Vec::with_capacity(n - 1);
    let in_flight: Vec<InFlight> = (1..n).map(|_| InFlight::default()).collect();
    for i in 1..n {
        let (tx, rx) = bounded::<Batch>(QUEUE_DEPTH);
        let (back_tx, back_rx) = bounded::<Batch>(QUEUE_DEPTH + 2);
        for _ in 0..QUEUE_DEPTH + 1 {
            back_tx.send(Batch::new()).expect("fresh channel has room");
        }
        let mut w = Worker::new(config.clone(), registry.clone(), mask_of(&owners, i));
        let drained = in_flight[i - 1].drained.clone();
        handles.push(thread::spawn(move || {
            for mut b in rx {
                b.drain(|fr| w.frame(fr));
                drained.fetch_add(1, Ordering::Release);
                // The reader may have finished and dropped its side: fine.
                let _ = back_tx.send(b);
            }
            w.finish()
        }));
        senders.push(tx);
        spare.push(back_rx);
    }
    let mut mine = Worker::new(config.clone(), registry.clone(), mask_of(&owners, 0));
    // This thread's own frames of a mapped file wait in a batch as well,
    // and are worked through when it fills or, sooner, when a worker's
    // queue is full: the reader then does its own share instead of waiting
    // for the worker. A stream's frames are worked through at once, as
    // keeping them would mean copying them.
    let mut own = Batch::new();
    let mut feeds = Feeds {
        current: spare
            .iter()
            .map(|r| r.recv().expect("spare batch"))
            .collect(),
        spare,
        senders,
        in_flight,
    };
    let mapping = timeline.mapping().cloned();
    let mut read = 0u64;
    let result = timeline.run(|fr| {
        span.see(fr.ts);
        read += fr.data.len() as u64;
        if span.frames.is_multiple_of(65_536) {
            progress(read);
        }
        let owner = usize::from(owners[shard::bucket(&fr)]);
        if owner == 0 && mapping.is_none() {
            mine.frame(&fr);
            return;
        }
        let b = match owner {
            0 => &mut own,
            _ => &mut feeds.current[owner - 1],
        };
        match &mapping {
            Some(map) => b.push_mapped(&fr, map),
            None => b.push(&fr),
        }
        if !b.full() {
            return;
        }
        if owner == 0 {
            // A worker with nothing queued gets what is batched for it
            // first, and works while this thread works through its own.
            for i in 0..feeds.current.len() {
                if feeds.starving(i)
                    && let Ok(fresh) = feeds.spare[i].try_recv()
                {
                    feeds.hand_on(i, fresh, &own, &mapping);
                }
            }
            own.drain(|f| mine.frame(f));
            return;
        }
        let i = owner - 1;
        let fresh = feeds.spare[i].try_recv().unwrap_or_else(|_| {
            own.drain(|f| mine.frame(f));
            feeds.spare[i].recv().expect("worker alive")
        });
        feeds.hand_on(i, fresh, &own, &mapping);
    });
    own.drain(|f| mine.frame(f));
    feeds.close();
    let mut results = vec![mine.finish()];
    results.extend(
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))),
    );
    result?;
    Ok(results)
}

/// The reader's side of the workers' queues: the batch it fills for each,
/// the emptied batches coming back, and which of those sent are unread.
struct Feeds {
    current: Vec<Batch>,
    spare: Vec<Receiver<Batch>>,
    senders: Vec<Sender<Batch>>,
    in_flight: Vec<InFlight>,
}

impl Feeds {
    /// Worker `i` has nothing queued, and something is batched for it.
    fn starving(&self, i: usize) -> bool {
        self.senders[i].is_empty() && !self.current[i].is_empty()
    }

    /// Sends worker `i`'s batch on, `fresh` taking its place, and moves the
    /// mark below which mapped pages may be released to the oldest frame
    /// still to be read (in flight, batched, or in the reader's `own`).
    fn hand_on(&mut self, i: usize, fresh: Batch, own: &Batch, mapping: &Option<Arc<SharedMap>>) {
        let full = std::mem::replace(&mut self.current[i], fresh);
        if let Some(map) = mapping {
            self.in_flight[i].sent(&full);
            let oldest = self
                .in_flight
                .iter_mut()
                .zip(&self.current)
                .filter_map(|(f, c)| f.oldest().or(c.first_mapped()))
                .chain(own.first_mapped())
                .min();
            map.set_in_use_from(oldest.unwrap_or(usize::MAX));
        }
        self.senders[i].send(full).expect("worker alive");
    }

    /// Sends the last batches and closes the queues: the workers finish.
    fn close(self) {
        for (b, sender) in self.current.into_iter().zip(&self.senders) {
            if !b.is_empty() {
                sender.send(b).expect("worker alive");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_passes_mapped_frames_by_offset_and_copies_others() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bytes");
        std::fs::write(&path, (0..=255u8).collect::<Vec<u8>>()).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        // SAFETY: a file of this test's own, not changed while mapped.
        let map = Arc::new(SharedMap::new(
            unsafe { memmap2::Mmap::map(&file) }.unwrap(),
        ));
        let elsewhere = vec![7u8; 5];
        let frame = |data| Frame {
            ts: 1,
            link: LinkType::Ethernet,
            data,
            orig_len: 60,
        };
        let mut b = Batch::new();
        b.push_mapped(&frame(&map[10..20]), &map);
        b.push_mapped(&frame(&elsewhere), &map);
        b.push_mapped(&frame(&map[250..]), &map);
        assert_eq!(b.data.len(), 5, "only the frame outside the map is copied");
        let mut seen = Vec::new();
        b.drain(|fr| seen.push(fr.data.to_vec()));
        assert_eq!(
            seen,
            vec![
                (10..20).collect::<Vec<u8>>(),
                vec![7; 5],
                (250..=255).collect()
            ]
        );
        assert!(b.is_empty() && !b.full());
    }

    #[test]
    fn in_flight_batches_hold_their_oldest_offset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bytes");
        std::fs::write(&path, vec![0u8; 4096]).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        // SAFETY: a file of this test's own, not changed while mapped.
        let map = Arc::new(SharedMap::new(
            unsafe { memmap2::Mmap::map(&file) }.unwrap(),
        ));
        let batch = |at: usize| {
            let mut b = Batch::new();
            b.push_mapped(
                &Frame {
                    ts: 1,
                    link: LinkType::Ethernet,
                    data: &map[at..at + 100],
                    orig_len: 100,
                },
                &map,
            );
            b
        };
        let mut f = InFlight::default();
        assert_eq!(f.oldest(), None);
        f.sent(&batch(100));
        f.sent(&batch(2000));
        assert_eq!(f.oldest(), Some(100));
        f.drained.fetch_add(1, Ordering::Release);
        assert_eq!(f.oldest(), Some(2000));
        f.drained.fetch_add(1, Ordering::Release);
        assert_eq!(f.oldest(), None);
    }

    #[test]
    fn bucket_shares() {
        let two = bucket_owners(2);
        assert_eq!(two.iter().filter(|&&o| o == 0).count(), 24);
        assert_eq!(two.iter().filter(|&&o| o == 1).count(), 40);
        // Four workers: the reader none, the other three 64 between them.
        let four = bucket_owners(4);
        assert_eq!(four.iter().filter(|&&o| o == 0).count(), 0);
        for w in 1..4u8 {
            let c = four.iter().filter(|&&o| o == w).count();
            assert!((21..=22).contains(&c), "worker {w}: {c}");
        }
    }
}
