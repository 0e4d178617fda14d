//! The whole offline pipeline: capture → decode → flows → analyzers →
//! inventory, on one thread or sharded over several.
//!
//! With one thread, frames go from the reader's buffer straight into the
//! worker: no channel, no copy. With N threads, the flows are split into
//! shards, each with its own worker, by a symmetric hash of the 5-tuple (so
//! both directions of a conversation meet in one shard). The reading thread
//! hashes each frame and puts it in its shard's batch: as an offset when the
//! file is memory-mapped (workers read the bytes from the map), as a copy
//! otherwise. The other threads work through the batches of any shard, one
//! thread at a time per shard and in order; the reader joins in when they
//! fall behind, and leaves a batch part-way when another thread waits for
//! its shard. Batches come back empty to be reused: no allocation per
//! packet.

pub mod shard;
mod worker;

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, TryLockError};
use std::thread;

use crossbeam_channel::{Receiver, Sender, bounded};

use crate::capture::{CaptureError, Frame, LinkType, Nanos, SharedMap, Timeline, prefetch};
use crate::detect::scan::ScanDetector;
use crate::event::Event;
use crate::flow::{ALL_BUCKETS, FlowStats, SHARD_BUCKETS as BUCKETS, Timeouts};
use crate::inventory::{Device, DeviceKey, WhenFull, keep_least_keys};
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
/// Frames between two checks of whether a batch should be left part-way
/// (`Batch::drain_from`): about 15 µs of home-mix's work.
const STOP_CHECK: usize = 64;
/// Batches per shard that can be sent and not yet worked through: bounds the
/// capture pages mapped between the reader and the workers to about
/// `shards * (POOL_PER_SHARD + 1) * shards * BATCH_BYTES`, as a shard's batch
/// spans about `shards` times its own bytes of the file. Home-mix, two
/// threads: 5 made its peak RSS 64-66 MiB, 3 60-62 MiB, with no difference in
/// speed that 20 interleaved runs could tell.
const POOL_PER_SHARD: usize = 3;

/// Settings for one analysis run.
#[derive(Clone, Debug)]
pub struct Config {
    pub threads: usize,
    pub home: HomeNets,
    pub max_flows: usize,
    /// Devices each worker's inventory holds at most, and the report.
    pub max_devices: usize,
    /// Which devices a full inventory keeps.
    pub when_full: WhenFull,
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
            when_full: WhenFull::KeepLeastKeys,
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
    /// `Some(cap)` when there were more devices than `Config::max_devices`
    /// (`cap`): only that many, the least keys, are in `devices`.
    pub devices_over_cap: Option<usize>,
    /// Events of every kind (the facts went to the inventory).
    pub events: Vec<Event>,
    /// The workers' scan findings, already turned into `events`: handed on
    /// only to be freed late, with the devices once the report is written
    /// (`output::report::Spent`; freeing them here took 4-5 ms of
    /// home-mix's run on one core).
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
    let mut devices_over_cap = false;
    for r in results {
        counters.add(&r.counters);
        devices_over_cap |= r.devices_over_cap;
        devices.push(r.devices);
        scans.push(r.scans);
        events.extend(r.out.events);
    }
    devices_over_cap |= keep_least_keys(&mut devices, config.max_devices);
    let events = if config.threads > 1 {
        // With the workers done, another core loads most of the signature
        // tables the report reads (device rules 7 ms, support periods 3 ms)
        // while this one merges the scan findings (5-6 ms of home-mix) and
        // loads the OUI table (6 ms). The findings are merged into the
        // first shard's and the others' are not freed here: done on the
        // other core, or freed at once, the merge wrote into and freed to
        // the heap the other thread was allocating from, and the two
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
        devices_over_cap: devices_over_cap.then_some(config.max_devices),
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
    frames: Vec<Entry>,
    /// The frames' link types: kept apart, as they seldom change, so that
    /// an entry is 24 bytes rather than 40. Each entry is written on the
    /// reader's core and read on another's, its cache line moving between
    /// them each time a batch is reused: the reader's batching took 54 ms
    /// of home-mix's CPU with 40-byte entries, 36 ms with these (perf, 4
    /// two-thread runs each).
    links: Runs<LinkType>,
    /// The pipeline's clock where a frame's own time is behind it (the
    /// capture's time went backwards): a frame's clock is the later of its
    /// time and its run's value. Kept apart for the same reason.
    clocks: Runs<Nanos>,
}

/// Values that hold for runs of a batch's frames, each from the index where
/// it changes: the cost of a value seldom changed is its changes alone.
struct Runs<T> {
    starts: Vec<(u32, T)>,
}

impl<T> Default for Runs<T> {
    fn default() -> Self {
        Runs { starts: Vec::new() }
    }
}

impl<T: Copy + PartialEq> Runs<T> {
    /// `v` holds from frame `at` on.
    #[inline]
    fn set(&mut self, at: usize, v: T) {
        if self.starts.last().is_none_or(|&(_, last)| last != v) {
            self.starts.push((at as u32, v));
        }
    }

    /// A reader of the values from frame `from` on, `none` before the first run.
    fn from(&self, from: usize, none: T) -> RunReader<'_, T> {
        let next = self.starts.partition_point(|&(i, _)| i as usize <= from);
        let value = match next {
            0 => none,
            n => self.starts[n - 1].1,
        };
        let mut r = RunReader {
            starts: &self.starts,
            next,
            next_at: 0,
            value,
        };
        r.next_at = r.start_of(next);
        r
    }
}

struct RunReader<'a, T> {
    starts: &'a [(u32, T)],
    /// The run after the current one, and the frame it begins at.
    next: usize,
    next_at: usize,
    value: T,
}

impl<T: Copy> RunReader<'_, T> {
    /// The value at frame `i`, for frames taken in order.
    #[inline]
    fn at(&mut self, i: usize) -> T {
        if i == self.next_at {
            self.value = self.starts[self.next].1;
            self.next += 1;
            self.next_at = self.start_of(self.next);
        }
        self.value
    }

    fn start_of(&self, run: usize) -> usize {
        self.starts
            .get(run)
            .map_or(usize::MAX, |&(i, _)| i as usize)
    }
}

/// A batched frame.
#[derive(Clone, Copy)]
struct Entry {
    ts: Nanos,
    /// Where its bytes are: an offset in the capture file's map, or with
    /// [`COPIED`] set, in the batch's own buffer.
    at: u64,
    /// Captured length.
    len: u32,
    orig_len: u32,
}

/// Marks an [`Entry`]'s offset as one in the batch's own buffer.
const COPIED: u64 = 1 << 63;

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
            links: Runs::default(),
            clocks: Runs::default(),
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
        let off = self.data.len() as u64;
        self.data.extend_from_slice(fr.data);
        self.add(fr, off | COPIED);
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
        self.add(fr, offset as u64);
    }

    /// Records that the pipeline's time at the frame pushed last was
    /// `clock`, when that is later than the frame's own time.
    #[inline]
    pub fn set_clock(&mut self, clock: Nanos) {
        if let Some(last) = self.frames.last()
            && clock > last.ts
        {
            self.clocks.set(self.frames.len() - 1, clock);
        }
    }

    /// Where in the map the batch's first mapped frame lies.
    fn first_mapped(&self) -> Option<usize> {
        self.frames
            .iter()
            .find(|f| f.at & COPIED == 0)
            .map(|f| f.at as usize)
    }

    #[inline]
    fn add(&mut self, fr: &Frame<'_>, at: u64) {
        self.links.set(self.frames.len(), fr.link);
        self.bytes += fr.data.len();
        self.frames.push(Entry {
            ts: fr.ts,
            at,
            len: fr.data.len() as u32,
            orig_len: fr.orig_len,
        });
    }

    /// Hands each frame to `f`, then empties the batch for reuse.
    pub fn drain(&mut self, mut f: impl FnMut(&Frame<'_>)) {
        let stopped = self.drain_from(0, |fr, _| f(fr), || false);
        debug_assert!(stopped.is_none());
    }

    /// Hands each frame from the `from`-th on to `f`, with the pipeline's
    /// time at it (see [`Batch::set_clock`]), asking `stop` every
    /// [`STOP_CHECK`] frames whether to stop there. Returns where it stopped
    /// (the batch kept as it is), or `None` once all were handed on and the
    /// batch emptied for reuse.
    pub fn drain_from(
        &mut self,
        from: usize,
        mut f: impl FnMut(&Frame<'_>, Nanos),
        stop: impl Fn() -> bool,
    ) -> Option<usize> {
        let map: &[u8] = self.map.as_deref().map_or(&[], |m| &m[..]);
        let bytes = |e: &Entry| {
            let at = (e.at & !COPIED) as usize;
            let source = if e.at & COPIED != 0 { &self.data } else { map };
            &source[at..][..e.len as usize]
        };
        let mut links = self.links.from(from, LinkType::Ethernet);
        let mut clocks = self.clocks.from(from, 0);
        for (i, e) in self.frames.iter().enumerate().skip(from) {
            if i > from && i.is_multiple_of(STOP_CHECK) && stop() {
                return Some(i);
            }
            // The reader touched a mapped frame on its own core: fetch the
            // headers of the frame a few ahead while this one is processed.
            if let Some(ahead) = self.frames.get(i + PREFETCH_FRAMES) {
                let ahead = bytes(ahead);
                prefetch(ahead.as_ptr());
                prefetch(ahead.as_ptr().wrapping_add(64));
            }
            f(
                &Frame {
                    ts: e.ts,
                    link: links.at(i),
                    data: bytes(e),
                    orig_len: e.orig_len,
                },
                e.ts.max(clocks.at(i)),
            );
        }
        self.frames.clear();
        self.links.starts.clear();
        self.clocks.starts.clear();
        self.data.clear();
        self.bytes = 0;
        None
    }
}

/// Shards the flows are split into with `threads` threads: one per thread
/// besides the reader's, and at least two, so that the reader has a shard
/// to work on when the others are busy.
fn shard_count(threads: usize) -> usize {
    (threads - 1).max(2)
}

/// Which shard owns each bucket: the buckets split evenly. Fixed by the
/// number of shards alone, so the flows each shard holds (and, when its
/// table is full, evicts) do not depend on which thread worked on them.
fn bucket_shards(shards: usize) -> [u8; BUCKETS] {
    let mut owners = [0u8; BUCKETS];
    for (b, o) in owners.iter_mut().enumerate() {
        *o = (b * shards / BUCKETS) as u8;
    }
    owners
}

/// The buckets `shard` owns, as a mask.
fn mask_of(owners: &[u8; BUCKETS], shard: usize) -> u64 {
    owners
        .iter()
        .enumerate()
        .filter(|&(_, &o)| usize::from(o) == shard)
        .fold(0, |m, (b, _)| m | 1 << b)
}

/// The batches sent to one shard that have not been worked through yet, by
/// the map offset of their first frame: pages from the oldest on stay mapped.
#[derive(Default)]
struct InFlight {
    firsts: VecDeque<usize>,
    sent: usize,
    /// Batches worked through (whoever worked on them counts them).
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

/// One shard of the flows: its worker, and the batches waiting for it.
/// Whichever thread holds the worker takes the shard's next batch, so a
/// shard's batches are worked through one at a time and in order, by
/// whichever thread is free: no thread waits while another has a backlog
/// (with a fixed share for each thread, one waited for the other 50-180 ms
/// of home-mix's two-thread run, its frames costing more in some stretches
/// of the capture and less in others, and a VM's cores running at uneven
/// speeds).
struct Shard {
    /// `None` once finished.
    worker: Mutex<Option<Working>>,
    queue: Sender<Batch>,
    waiting: Receiver<Batch>,
    drained: Arc<AtomicUsize>,
    /// Threads waiting for `worker`'s lock.
    wanted: AtomicUsize,
    /// Whether a batch was left part-way (`Working::rest`): work waits even
    /// with the queue empty.
    resumable: AtomicBool,
}

/// A shard's worker, with the batch it was left part-way through.
struct Working {
    worker: Worker,
    /// A batch the reader left to go back to reading, and the frame to go
    /// on from: worked through before anything in the queue.
    rest: Option<(Batch, usize)>,
}

impl Shard {
    /// A shard for `worker`, with room in its queue for `depth` batches.
    fn new(worker: Worker, depth: usize) -> Shard {
        let (queue, waiting) = bounded::<Batch>(depth);
        Shard {
            worker: Mutex::new(Some(Working { worker, rest: None })),
            queue,
            waiting,
            drained: Arc::default(),
            wanted: AtomicUsize::new(0),
            resumable: AtomicBool::new(false),
        }
    }

    /// Works through the shard's next waiting batch, taken as `take` says;
    /// returns whether it did. A worker that panicked panics here too, in
    /// the thread that would have waited for it.
    fn work(&self, spare: &Sender<Batch>, take: Take) -> bool {
        if self.waiting.is_empty() && !self.resumable.load(Ordering::Acquire) {
            return false;
        }
        let mut worker = match self.worker.try_lock() {
            Ok(w) => w,
            Err(TryLockError::WouldBlock) if take == Take::Waiting => {
                self.wanted.fetch_add(1, Ordering::Relaxed);
                let w = self.worker.lock();
                self.wanted.fetch_sub(1, Ordering::Relaxed);
                w.unwrap_or_else(|_| panic!("a pipeline worker panicked"))
            }
            Err(TryLockError::WouldBlock) => return false,
            Err(TryLockError::Poisoned(_)) => panic!("a pipeline worker panicked"),
        };
        // Finished while this thread waited for it: its queue was emptied
        // first, and nothing more is sent to it.
        let Some(w) = worker.as_mut() else {
            return false;
        };
        self.next(w, spare, take == Take::HandingOver)
    }

    /// Works `w`, the shard's worker (its lock held), through the rest of
    /// the batch left part-way or else the next waiting one, returning an
    /// emptied batch to the pool; false if there was none. With
    /// `hand_over`, leaves the batch part-way once another thread waits for
    /// the shard: the reader, working through a batch only because every
    /// batch of the pool was waiting, goes back to reading into the one the
    /// waiting thread has just returned, which takes the shard over (timed
    /// on home-mix, the helper otherwise waited 27-61 ms a run, about a
    /// batch each time, for the reader's shard while its own had nothing).
    fn next(&self, w: &mut Working, spare: &Sender<Batch>, hand_over: bool) -> bool {
        let (mut b, from) = match w.rest.take() {
            Some(rest) => {
                self.resumable.store(false, Ordering::Release);
                rest
            }
            None => match self.waiting.try_recv() {
                Ok(b) => (b, 0),
                Err(_) => return false,
            },
        };
        let worker = &mut w.worker;
        let wanted = || hand_over && self.wanted.load(Ordering::Relaxed) > 0;
        match b.drain_from(from, |fr, clock| worker.frame_at(fr, clock), wanted) {
            Some(at) => {
                w.rest = Some((b, at));
                self.resumable.store(true, Ordering::Release);
            }
            None => {
                self.drained.fetch_add(1, Ordering::Release);
                // The pool has room for every batch.
                let _ = spare.try_send(b);
            }
        }
        true
    }

    /// Works the reader's batch `b` for this shard through at once, in
    /// place of sending it, if nothing of the shard is queued, left
    /// part-way or being worked on: then its frames are the shard's next.
    /// False (`b` untouched) otherwise.
    fn work_in_place(&self, b: &mut Batch) -> bool {
        // Only the reader queues batches, and a batch is taken from the
        // queue with the lock held: with the lock, an empty queue stays
        // empty and nothing taken from it is still being worked.
        let Ok(mut worker) = self.worker.try_lock() else {
            return false;
        };
        let Some(w) = worker.as_mut() else {
            return false;
        };
        if b.is_empty() || !self.waiting.is_empty() || w.rest.is_some() {
            return false;
        }
        let worker = &mut w.worker;
        b.drain_from(0, |fr, clock| worker.frame_at(fr, clock), || false);
        true
    }

    /// Works through whatever is left and finishes the shard's worker: call
    /// once nothing more will be sent to it.
    fn finish(&self, spare: &Sender<Batch>) -> WorkerResult {
        let mut worker = self
            .worker
            .lock()
            .unwrap_or_else(|_| panic!("a pipeline worker panicked"));
        let w = worker.as_mut().expect("finished once");
        while self.next(w, spare, false) {}
        worker.take().expect("finished once").worker.finish()
    }
}

/// How a thread takes a shard's next batch.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Take {
    /// Only from a shard no other thread is at.
    IfFree,
    /// Waiting for the thread at the shard, if one is.
    Waiting,
    /// As `IfFree`, leaving the batch part-way once another thread waits
    /// for the shard: the reader's way, as it has reading to go back to.
    HandingOver,
}

/// Works through one waiting batch of any shard, trying `first` first;
/// returns whether it found one.
fn work_any(shards: &[Shard], first: usize, spare: &Sender<Batch>, take: Take) -> bool {
    (0..shards.len()).any(|k| shards[(first + k) % shards.len()].work(spare, take))
}

fn run_sharded(
    timeline: &mut Timeline,
    config: &Arc<Config>,
    registry: &Arc<Registry>,
    span: &mut Span,
    progress: ProgressFn<'_>,
) -> Result<Vec<WorkerResult>, CaptureError> {
    let helpers = config.threads - 1;
    let count = shard_count(config.threads);
    let owners = bucket_shards(count);
    let pool = count * POOL_PER_SHARD;
    let (spare_tx, spare) = bounded::<Batch>(pool + count);
    for _ in 0..pool {
        spare_tx.send(Batch::new()).expect("fresh pool has room");
    }
    let shards: Vec<Shard> = (0..count)
        .map(|k| {
            let worker = Worker::new(config.clone(), registry.clone(), mask_of(&owners, k));
            Shard::new(worker, pool + count)
        })
        .collect();
    let mapping = timeline.mapping().cloned();
    let mut read = 0u64;
    // Rung after each batch sent: wakes a helper with nothing to do.
    let (doorbell, rings) = bounded::<()>(helpers);
    thread::scope(|scope| {
        let (shards, spare_tx) = (&shards, &spare_tx);
        let helping: Vec<_> = (0..helpers)
            .map(|i| {
                let rings = rings.clone();
                scope.spawn(move || {
                    // Each helper keeps to a shard of its own while it has
                    // work (its flows stay in its core's cache), and helps
                    // with the others' when it has none.
                    let mine = (i + 1) % count;
                    loop {
                        // A batch waiting for a shard the reader is at is
                        // worth waiting for: the reader leaves its batch
                        // part-way for this thread (`Shard::next`).
                        if work_any(shards, mine, spare_tx, Take::IfFree)
                            || work_any(shards, mine, spare_tx, Take::Waiting)
                        {
                            continue;
                        }
                        if rings.recv().is_err() {
                            break;
                        }
                    }
                    // Everything is sent: the helper of a shard finishes it.
                    (i + 1 < count).then(|| shards[i + 1].finish(spare_tx))
                })
            })
            .collect();
        drop(rings);
        // Made here, so that a panic on this thread drops the doorbell and
        // the helpers stop before the scope waits for them.
        let mut feeds = Feeds {
            current: (0..count).map(|_| Batch::new()).collect(),
            in_flight: shards
                .iter()
                .map(|s| InFlight {
                    drained: s.drained.clone(),
                    ..InFlight::default()
                })
                .collect(),
            doorbell: Some(doorbell),
        };
        // The pipeline's time, for the workers (`Worker::frame_at`).
        let mut clock: Nanos = 0;
        let result = timeline.run(|fr| {
            span.see(fr.ts);
            read += fr.data.len() as u64;
            if span.frames.is_multiple_of(65_536) {
                progress(read);
            }
            let k = usize::from(owners[shard::bucket(&fr)]);
            let b = &mut feeds.current[k];
            match &mapping {
                Some(map) => b.push_mapped(&fr, map),
                None => b.push(&fr),
            }
            clock = clock.max(fr.ts);
            b.set_clock(clock);
            if !b.full() {
                return;
            }
            // Reading comes first: it feeds every thread. Only with every
            // batch of the pool waiting does this thread work through one.
            let fresh = loop {
                if let Ok(b) = spare.try_recv() {
                    break b;
                }
                if !work_any(shards, 0, spare_tx, Take::HandingOver) {
                    // The waiting batches are all of a shard another thread
                    // is at. Rather than wait for it (on home-mix the
                    // reader waited 10-20 ms a run so), this thread works
                    // the batch in hand for another shard: the full one,
                    // then it reads on into it; else a part-filled one.
                    if shards[k].work_in_place(&mut feeds.current[k]) {
                        return;
                    }
                    let mut others = (0..shards.len()).filter(|&j| j != k);
                    if others.any(|j| shards[j].work_in_place(&mut feeds.current[j])) {
                        continue;
                    }
                    break wait_for_spare(&spare, shards);
                }
            };
            feeds.send(k, fresh, shards, &mapping);
        });
        feeds.close(shards);
        // The rest, with the helpers, then this thread's own shard.
        while work_any(shards, 0, spare_tx, Take::IfFree) {}
        let mut results = vec![shards[0].finish(spare_tx)];
        for h in helping {
            results.extend(h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)));
        }
        result.map(|()| results)
    })
}

/// Waits for an emptied batch, while other threads work on every shard that
/// has batches waiting. A worker that panicked panics here too.
fn wait_for_spare(spare: &Receiver<Batch>, shards: &[Shard]) -> Batch {
    loop {
        match spare.recv_timeout(std::time::Duration::from_millis(10)) {
            Ok(b) => return b,
            Err(_) => {
                if shards.iter().any(|s| s.worker.is_poisoned()) {
                    panic!("a pipeline worker panicked");
                }
            }
        }
    }
}

/// The reader's side of the shards' queues: the batch it fills for each,
/// and which of those sent are not worked through yet.
struct Feeds {
    current: Vec<Batch>,
    in_flight: Vec<InFlight>,
    /// `None` once everything is sent.
    doorbell: Option<Sender<()>>,
}

impl Feeds {
    /// Sends shard `k`'s batch on, `fresh` taking its place, and moves the
    /// mark below which mapped pages may be released to the oldest frame
    /// still to be read (sent, or still batched).
    fn send(&mut self, k: usize, fresh: Batch, shards: &[Shard], mapping: &Option<Arc<SharedMap>>) {
        let full = std::mem::replace(&mut self.current[k], fresh);
        if let Some(map) = mapping {
            self.in_flight[k].sent(&full);
            let oldest = self
                .in_flight
                .iter_mut()
                .zip(&self.current)
                .filter_map(|(f, c)| f.oldest().or(c.first_mapped()))
                .min();
            map.set_in_use_from(oldest.unwrap_or(usize::MAX));
        }
        self.enqueue(&shards[k], full);
    }

    /// Queues a batch for its shard and wakes a helper with nothing to do.
    fn enqueue(&self, shard: &Shard, b: Batch) {
        // The queue has room for every batch of the pool.
        shard.queue.send(b).expect("the queue outlives the run");
        if let Some(d) = &self.doorbell {
            let _ = d.try_send(());
        }
    }

    /// Sends the last batches and tells the helpers nothing more will come.
    fn close(&mut self, shards: &[Shard]) {
        for (k, shard) in shards.iter().enumerate() {
            if !self.current[k].is_empty() {
                let b = std::mem::take(&mut self.current[k]);
                self.enqueue(shard, b);
            }
        }
        self.doorbell = None;
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

    /// Frames of a test's own: `n` copies, each numbered in its first byte.
    fn numbered_batch(n: usize) -> Batch {
        let mut b = Batch::new();
        for i in 0..n {
            let data = [i as u8; 20];
            b.push(&Frame {
                ts: i as Nanos,
                link: LinkType::Ethernet,
                data: &data,
                orig_len: 20,
            });
        }
        b
    }

    #[test]
    fn a_batch_left_part_way_goes_on_where_it_stopped() {
        let mut b = numbered_batch(200);
        let mut seen = Vec::new();
        let at = b.drain_from(0, |fr, _| seen.push(fr.data[0]), || true);
        assert_eq!(at, Some(STOP_CHECK), "stops at the first check");
        assert!(!b.is_empty(), "kept as it is");
        let rest = b.drain_from(STOP_CHECK, |fr, _| seen.push(fr.data[0]), || false);
        assert_eq!(rest, None);
        assert_eq!(seen, (0..200).map(|i| i as u8).collect::<Vec<_>>());
        assert!(b.is_empty(), "emptied once all were handed on");
    }

    #[test]
    fn frames_keep_their_link_types_and_clocks_however_drained() {
        let links = [LinkType::Raw, LinkType::LinuxSll, LinkType::Ethernet];
        // Time jumps forward at frame 100, then falls back: frames 101 to
        // 199 are behind the pipeline's clock.
        let ts = |i: usize| if i == 100 { 2000 } else { 10 * i as Nanos };
        let mut b = Batch::new();
        let mut clock = 0;
        for i in 0..300usize {
            // Runs of 100, 30 and 170 frames.
            let link = match i {
                0..100 => links[0],
                100..130 => links[1],
                _ => links[2],
            };
            b.push(&Frame {
                ts: ts(i),
                link,
                data: &[1, 2, 3],
                orig_len: 3,
            });
            clock = clock.max(ts(i));
            b.set_clock(clock);
        }
        let mut seen = Vec::new();
        // Stops at 128, inside the second run, then goes on from there.
        let calls = std::cell::Cell::new(0);
        let at = b.drain_from(
            0,
            |fr, clock| seen.push((fr.ts, fr.link, clock)),
            || {
                calls.set(calls.get() + 1);
                calls.get() == 2
            },
        );
        assert_eq!(at, Some(2 * STOP_CHECK));
        b.drain_from(
            2 * STOP_CHECK,
            |fr, clock| seen.push((fr.ts, fr.link, clock)),
            || false,
        );
        let want: Vec<_> = (0..300usize)
            .map(|i| {
                let link = links[usize::from(i >= 100) + usize::from(i >= 130)];
                let clock = if (100..200).contains(&i) { 2000 } else { ts(i) };
                (ts(i), link, clock)
            })
            .collect();
        assert_eq!(seen, want);
        assert!(b.clocks.starts.is_empty(), "emptied for reuse");
    }

    /// A shard of every bucket, and a pool for its emptied batches.
    fn test_shard() -> (Shard, Sender<Batch>, Receiver<Batch>) {
        let config = Arc::new(Config::default());
        let registry = Arc::new(Registry::builtin());
        let (spare_tx, spare) = bounded::<Batch>(4);
        let shard = Shard::new(Worker::new(config, registry, ALL_BUCKETS), 4);
        (shard, spare_tx, spare)
    }

    #[test]
    fn the_reader_hands_a_wanted_shard_over_part_way() {
        let (shard, spare_tx, spare) = test_shard();
        shard.queue.send(numbered_batch(200)).unwrap();
        shard.queue.send(numbered_batch(10)).unwrap();
        // Another thread waits for the shard: the reader leaves its batch.
        shard.wanted.store(1, Ordering::Relaxed);
        assert!(shard.work(&spare_tx, Take::HandingOver));
        assert!(shard.resumable.load(Ordering::Acquire));
        assert_eq!(shard.drained.load(Ordering::Acquire), 0);
        assert!(spare.is_empty(), "the batch left part-way is not returned");
        // Whoever takes the shard next finishes that batch before the next.
        let mut guard = shard.worker.lock().unwrap();
        let w = guard.as_mut().unwrap();
        assert_eq!(w.rest.as_ref().map(|r| r.1), Some(STOP_CHECK));
        assert!(shard.next(w, &spare_tx, false));
        assert!(w.rest.is_none() && !shard.resumable.load(Ordering::Acquire));
        assert_eq!(shard.drained.load(Ordering::Acquire), 1);
        assert_eq!(shard.waiting.len(), 1, "the next batch still waits");
        drop(guard);
        // Every frame worked through once.
        assert_eq!(shard.finish(&spare_tx).counters.packets, 210);
    }

    #[test]
    fn the_reader_works_its_batch_in_place_only_when_it_comes_next() {
        let (shard, spare_tx, _spare) = test_shard();
        let packets = |shard: &Shard| {
            let guard = shard.worker.lock().unwrap();
            guard.as_ref().unwrap().worker.counters().packets
        };
        // A batch queued before it: this one must wait its turn.
        shard.queue.send(numbered_batch(10)).unwrap();
        let mut b = numbered_batch(20);
        assert!(!shard.work_in_place(&mut b));
        assert_eq!(b.len(), 20, "left as it was");
        // Another thread at the shard.
        assert!(shard.work(&spare_tx, Take::IfFree));
        let guard = shard.worker.lock().unwrap();
        assert!(!shard.work_in_place(&mut b));
        drop(guard);
        // A batch left part-way.
        shard.queue.send(numbered_batch(200)).unwrap();
        shard.wanted.store(1, Ordering::Relaxed);
        assert!(shard.work(&spare_tx, Take::HandingOver));
        shard.wanted.store(0, Ordering::Relaxed);
        assert!(!shard.work_in_place(&mut b));
        assert!(shard.work(&spare_tx, Take::IfFree));
        // Nothing before it: worked through here, and emptied for reuse.
        assert_eq!(packets(&shard), 210);
        assert!(shard.work_in_place(&mut b));
        assert!(b.is_empty());
        assert_eq!(packets(&shard), 230);
        assert!(!shard.work_in_place(&mut b), "nothing to work");
        assert_eq!(shard.finish(&spare_tx).counters.packets, 230);
    }

    #[test]
    fn bucket_shares() {
        // Two and three threads: two shards of 32 buckets.
        assert_eq!(shard_count(2), 2);
        assert_eq!(shard_count(3), 2);
        let two = bucket_shards(2);
        assert_eq!(two.iter().filter(|&&o| o == 0).count(), 32);
        assert_eq!(two.iter().filter(|&&o| o == 1).count(), 32);
        // Four threads: three shards, 64 buckets between them.
        assert_eq!(shard_count(4), 3);
        let three = bucket_shards(3);
        for k in 0..3u8 {
            let c = three.iter().filter(|&&o| o == k).count();
            assert!((21..=22).contains(&c), "shard {k}: {c}");
        }
        let masks: Vec<u64> = (0..3).map(|k| mask_of(&three, k)).collect();
        assert_eq!(masks[0] | masks[1] | masks[2], u64::MAX);
        assert_eq!(
            masks[0] & masks[1] | masks[1] & masks[2] | masks[0] & masks[2],
            0
        );
    }
}
