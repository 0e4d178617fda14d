//! The bounded flow table.
//!
//! Flows live in a slab indexed by `u32`; a hash table of bare indices finds
//! them by key. Keys are compared in the slab, which a lookup reads anyway:
//! at 4 bytes an entry the table stays in cache where (key, index) pairs at
//! 64 bytes did not, and a packet costs one cache miss fewer.
//! Each flow is on one of three intrusive LRU lists by timeout class, ordered
//! by last packet, so idle expiry pops from the front and, when the table is
//! full, the oldest idle flow is evicted in O(1). Unanswered SYNs stay in the
//! fixed-size [`SynCache`] and never take a slot.
//!
//! The lists and the cap are kept per shard bucket (`FlowKey::shard_bucket`):
//! a bucket's flows and their packets are the same whichever worker holds
//! the bucket, so a full table evicts the same flows however many threads
//! share the work.

use hashbrown::HashTable;

use super::key::{FlowKey, SHARD_BUCKETS, Side};
use super::syn_cache::{SynCache, SynEntry};
use super::{EndReason, Flow};
use crate::capture::Nanos;
use crate::decode::{Ip, Mac, Packet, Transport, tcp_flags};

const NIL: u32 = u32::MAX;
const SECOND: Nanos = 1_000_000_000;

/// Timeout classes.
const LONG: u8 = 0; // established TCP
const SHORT: u8 = 1; // TCP opening or closed
const DATAGRAM: u8 = 2; // UDP, ICMP, other IP

/// A list's number: four a bucket, one for each class and one unused, so
/// that a flow's `u8` list number indexes the lists unchecked.
const LISTS: usize = 4 * SHARD_BUCKETS;
const _: () = assert!(LISTS == 256);

fn list_of(bucket: usize, class: u8) -> usize {
    bucket << 2 | usize::from(class)
}

/// Idle timeouts, in capture time.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    pub tcp_established: Nanos,
    /// TCP before the handshake completes, and after FIN/RST.
    pub tcp_transitory: Nanos,
    pub datagram: Nanos,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            tcp_established: 600 * SECOND,
            tcp_transitory: 30 * SECOND,
            datagram: 120 * SECOND,
        }
    }
}

/// Counters a report can show.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowStats {
    /// Conversations seen: flows plus SYN attempts that never got a flow.
    pub flows: u64,
    /// Of those, TCP and UDP.
    pub tcp: u64,
    pub udp: u64,
    /// TCP attempts whose SYN was never answered.
    pub unanswered_syns: u64,
    /// Flows pushed out because the table was full.
    pub evicted: u64,
    pub expired: u64,
    /// Most flows held at once.
    pub peak: u64,
}

/// What the table needs of a packet.
#[derive(Clone, Copy, Debug)]
pub struct PacketView {
    pub key: FlowKey,
    pub side: Side,
    pub ts: Nanos,
    pub len: u32,
    pub src_mac: Option<Mac>,
    /// TCP flags, `None` for other protocols.
    pub tcp_flags: Option<u8>,
    /// TCP sequence number.
    pub seq: u32,
}

impl PacketView {
    /// The flow view of a decoded IP packet, and its transport payload.
    /// Inlined: returned through memory, the view was read back in pieces
    /// of other sizes than it was written in, which stalled every packet.
    #[inline]
    pub fn of<'a>(p: &Packet<'a>, ip: &Ip) -> (PacketView, &'a [u8]) {
        let (sport, dport, flags, seq, payload) = match p.transport {
            Transport::Tcp(t) => (t.src_port, t.dst_port, Some(t.flags), t.seq, t.payload),
            Transport::Udp {
                src_port,
                dst_port,
                payload,
            } => (src_port, dst_port, None, 0, payload),
            Transport::Icmp { .. } | Transport::None => (0, 0, None, 0, &[][..]),
        };
        let (key, side) = FlowKey::of16(ip.src16, ip.dst16, sport, dport, ip.proto);
        let view = PacketView {
            key,
            side,
            ts: p.ts,
            len: p.wire_len,
            src_mac: p.src_mac,
            tcp_flags: flags,
            seq,
        };
        (view, payload)
    }
}

#[derive(Clone, Copy)]
struct List {
    head: u32,
    tail: u32,
}

pub struct FlowTable {
    map: HashTable<u32>,
    slots: Vec<Flow>,
    free: Vec<u32>,
    /// Each bucket's list of each timeout class (`list_of`).
    lists: [List; LISTS],
    /// Flows held, by bucket.
    held: [u32; SHARD_BUCKETS],
    /// The buckets this table is given the packets of, as a mask.
    buckets: u64,
    /// By timeout class (the fourth unused, as its lists are).
    timeouts: [Nanos; 4],
    /// Flows a bucket holds at most.
    bucket_cap: u32,
    syn: SynCache,
    now: Nanos,
    next_sweep: Nanos,
    stats: FlowStats,
}

impl FlowTable {
    /// A table given the packets of the shard `buckets` (a mask). `cap`
    /// flows at most over all buckets, whichever table holds them: each
    /// bucket holds `cap / SHARD_BUCKETS` (at least one). `syn_slots`
    /// entries in a SYN cache for all buckets, of which this table holds
    /// its buckets' regions.
    pub fn new(cap: usize, syn_slots: usize, timeouts: Timeouts, buckets: u64) -> FlowTable {
        let empty = List {
            head: NIL,
            tail: NIL,
        };
        FlowTable {
            map: HashTable::new(),
            slots: Vec::new(),
            free: Vec::new(),
            lists: [empty; LISTS],
            held: [0; SHARD_BUCKETS],
            buckets,
            timeouts: [
                timeouts.tcp_established,
                timeouts.tcp_transitory,
                timeouts.datagram,
                Nanos::MAX,
            ],
            bucket_cap: u32::try_from(cap / SHARD_BUCKETS)
                .unwrap_or(u32::MAX)
                .max(1),
            syn: SynCache::new(syn_slots, buckets),
            now: 0,
            next_sweep: 0,
            stats: FlowStats::default(),
        }
    }

    /// Starts fetching the SYN-cache slot of a SYN with this key: a slot
    /// of a cache this size is seldom in the CPU's cache, and a scan's SYN
    /// waited on it (see `Worker::packet`).
    #[inline]
    pub fn prefetch_syn(&self, key: &FlowKey) {
        self.syn.prefetch(key, key.fx_hash());
    }

    pub fn stats(&self) -> FlowStats {
        self.stats
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn flow_mut(&mut self, idx: u32) -> &mut Flow {
        &mut self.slots[idx as usize]
    }

    /// Accounts a packet to its flow. Returns the flow's index, or `None` when
    /// the packet was absorbed (a SYN waiting in the SYN cache, or a flow that
    /// ended with this packet).
    ///
    /// `clock` is the pipeline's time at this packet: the latest time of any
    /// frame read so far, of whatever flow or shard (at least `p.ts`). A flow
    /// goes idle when this clock passes its timeout after the clock's time at
    /// its last packet. Captures whose time goes backwards (merged from
    /// several sources, or a clock stepped back) thus end the same flows
    /// however they are sharded, and a flow that goes on behind the clock
    /// is not split at each packet.
    ///
    /// Inlined into the worker's per-packet path: left to the optimiser, it
    /// was inlined or not depending on how unrelated code split into codegen
    /// units, and not inlined cost a one-thread run 2-3 %.
    #[inline]
    pub fn update(
        &mut self,
        p: &PacketView,
        clock: Nanos,
        on_end: &mut impl FnMut(Flow, EndReason),
    ) -> Option<u32> {
        if clock > self.now {
            self.now = clock;
            if self.now >= self.next_sweep {
                self.expire(on_end);
                self.next_sweep = self.now + SECOND;
            }
        }
        let flags = p.tcp_flags.unwrap_or(0);
        let is_syn =
            p.tcp_flags.is_some() && flags & (tcp_flags::SYN | tcp_flags::ACK) == tcp_flags::SYN;
        // One hash for the index table and the SYN cache.
        let hash = p.key.fx_hash();
        let slots = &self.slots;
        if let Some(&idx) = self.map.find(hash, |&i| slots[i as usize].key == p.key) {
            let f = &self.slots[idx as usize];
            // Idle past its timeout but not yet swept (sweeps run once a
            // second): ended here just as a sweep would have ended it, so
            // that when sweeps run changes nothing.
            let idle = self.idle(f);
            let restart = is_syn && f.tcp.closed() && p.side == f.client_side();
            if !restart && !idle {
                self.account(idx, p);
                return Some(idx);
            }
            // Port reuse (a new connection on a closed flow's 5-tuple), or a
            // tuple used again after its flow went idle.
            let old = self.remove(idx);
            if idle {
                self.stats.expired += 1;
            }
            on_end(
                old,
                if idle {
                    EndReason::Idle
                } else {
                    EndReason::Closed
                },
            );
        }
        if is_syn {
            let e = SynEntry {
                key: p.key,
                client: p.side,
                ts: p.ts,
                last_ts: p.ts,
                client_mac: p.src_mac,
                seq: p.seq,
                packets: 1,
                bytes: u64::from(p.len),
            };
            let before = self.syn.live();
            let displaced = self.syn.insert(e, hash);
            if displaced.is_some() || self.syn.live() > before {
                self.count_new(6);
            }
            if let Some(old) = displaced {
                self.unanswered(old, on_end);
            }
            return None;
        }
        let cached = if p.tcp_flags.is_some() {
            self.syn.take(&p.key, hash)
        } else {
            None
        };
        if cached.is_none() {
            self.count_new(p.key.proto);
        }
        let client = match &cached {
            Some(e) => e.client,
            None if flags & (tcp_flags::SYN | tcp_flags::ACK)
                == tcp_flags::SYN | tcp_flags::ACK =>
            {
                p.side.other()
            }
            None => guess_client(&p.key, p.side),
        };
        let bucket = p.key.shard_bucket();
        if self.held[bucket] >= self.bucket_cap {
            self.make_room(bucket, on_end);
        }
        let mut flow = Flow {
            key: p.key,
            client: Some(client),
            first_ts: p.ts,
            last_ts: p.ts,
            ..Flow::default()
        };
        if let Some(e) = cached {
            flow.first_ts = e.ts;
            flow.packets[0] = e.packets;
            flow.bytes[0] = e.bytes;
            flow.macs[0] = e.client_mac;
            flow.isn[0] = e.seq;
            flow.tcp.syn = true;
        } else if p.tcp_flags.is_some() {
            flow.tcp.midstream = flags & tcp_flags::SYN == 0;
        }
        let idx = self.alloc(flow, bucket);
        let slots = &self.slots;
        self.map
            .insert_unique(hash, idx, |&i| slots[i as usize].key.fx_hash());
        self.stats.peak = self.stats.peak.max(self.map.len() as u64);
        self.account(idx, p);
        // A SYN answered by RST: the attempt is over at once.
        let f = &self.slots[idx as usize];
        if f.tcp.rst && f.tcp.syn && !f.tcp.syn_ack {
            let done = self.remove(idx);
            on_end(done, EndReason::Closed);
            return None;
        }
        Some(idx)
    }

    /// Moves the table's clock to `now` (when it is later) and ends the
    /// flows idle past their timeout: a live capture's quiet moments still
    /// end flows.
    pub fn expire_at(&mut self, now: Nanos, on_end: &mut impl FnMut(Flow, EndReason)) {
        self.now = self.now.max(now);
        self.expire(on_end);
    }

    /// Ends every flow idle past its timeout at the table's current time.
    pub fn expire(&mut self, on_end: &mut impl FnMut(Flow, EndReason)) {
        let mut buckets = self.buckets;
        while buckets != 0 {
            self.expire_bucket(buckets.trailing_zeros() as usize, on_end);
            buckets &= buckets - 1;
        }
    }

    /// Ends the bucket's flows idle at the table's current time: a prefix
    /// of each list, as the lists are in the order of the clock.
    fn expire_bucket(&mut self, bucket: usize, on_end: &mut impl FnMut(Flow, EndReason)) {
        for class in [LONG, SHORT, DATAGRAM] {
            loop {
                let head = self.lists[list_of(bucket, class)].head;
                if head == NIL || !self.idle(&self.slots[head as usize]) {
                    break;
                }
                let done = self.remove(head);
                self.stats.expired += 1;
                on_end(done, EndReason::Idle);
            }
        }
    }

    /// Whether a flow has been quiet for longer than its class's timeout
    /// at the table's current time.
    #[inline]
    fn idle(&self, f: &Flow) -> bool {
        f.last_clock
            .saturating_add(self.timeouts[usize::from(f.list & 3)])
            < self.now
    }

    /// Ends everything still open, oldest first: the end of the capture.
    pub fn finish(&mut self, on_end: &mut impl FnMut(Flow, EndReason)) {
        let mut rest: Vec<u32> = self.map.iter().copied().collect();
        rest.sort_by_key(|&i| {
            let f = &self.slots[i as usize];
            (f.first_ts, f.key)
        });
        for idx in rest {
            let f = self.remove(idx);
            on_end(f, EndReason::Finished);
        }
        let mut attempts = Vec::new();
        self.syn.drain(|e| attempts.push(e));
        for e in attempts {
            self.unanswered(e, on_end);
        }
    }

    fn count_new(&mut self, proto: u8) {
        self.stats.flows += 1;
        match proto {
            6 => self.stats.tcp += 1,
            17 => self.stats.udp += 1,
            _ => {}
        }
    }

    fn unanswered(&mut self, e: SynEntry, on_end: &mut impl FnMut(Flow, EndReason)) {
        self.stats.unanswered_syns += 1;
        let mut flow = Flow {
            key: e.key,
            client: Some(e.client),
            first_ts: e.ts,
            last_ts: e.last_ts,
            ..Flow::default()
        };
        flow.packets[0] = e.packets;
        flow.bytes[0] = e.bytes;
        flow.macs[0] = e.client_mac;
        flow.tcp.syn = true;
        on_end(flow, EndReason::Idle);
    }

    /// Room for a new flow in a full bucket. Its idle flows end first, so
    /// that what is evicted does not depend on when sweeps last ran; then,
    /// if it is still full, its flow quiet for longest is evicted.
    fn make_room(&mut self, bucket: usize, on_end: &mut impl FnMut(Flow, EndReason)) {
        self.expire_bucket(bucket, on_end);
        if self.held[bucket] < self.bucket_cap {
            return;
        }
        let oldest = [LONG, SHORT, DATAGRAM]
            .map(|c| self.lists[list_of(bucket, c)].head)
            .into_iter()
            .filter(|&h| h != NIL)
            .min_by_key(|&h| self.slots[h as usize].last_clock);
        if let Some(idx) = oldest {
            let f = self.remove(idx);
            self.stats.evicted += 1;
            on_end(f, EndReason::Evicted);
        }
    }

    fn account(&mut self, idx: u32, p: &PacketView) {
        let f = &mut self.slots[idx as usize];
        let d = usize::from(p.side != f.client_side());
        f.packets[d] = f.packets[d].saturating_add(1);
        f.bytes[d] += u64::from(p.len);
        if f.macs[d].is_none() {
            f.macs[d] = p.src_mac;
        }
        if p.ts > f.last_ts {
            f.last_ts = p.ts;
        }
        f.last_clock = self.now;
        let class = if let Some(flags) = p.tcp_flags {
            let t = &mut f.tcp;
            let syn = flags & tcp_flags::SYN != 0;
            let ack = flags & tcp_flags::ACK != 0;
            if d == 0 {
                if syn && !ack {
                    t.syn = true;
                    f.isn[0] = p.seq;
                } else if ack && t.syn_ack {
                    t.established = true;
                }
            } else if syn && ack {
                t.syn_ack = true;
                f.isn[1] = p.seq;
            }
            if flags & tcp_flags::FIN != 0 {
                t.fin[d] = true;
            }
            if flags & tcp_flags::RST != 0 {
                t.rst = true;
            }
            if t.closed() {
                SHORT
            } else if t.syn_ack
                || t.established
                || (t.midstream && f.packets[0] > 0 && f.packets[1] > 0)
            {
                // Answered: the connection exists even if its last ACK was not captured.
                LONG
            } else {
                SHORT
            }
        } else {
            DATAGRAM
        };
        self.unlink(idx);
        let f = &mut self.slots[idx as usize];
        f.list = f.list & !3 | class;
        self.push_back(idx);
    }

    fn alloc(&mut self, flow: Flow, bucket: usize) -> u32 {
        let idx = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = flow;
                i
            }
            None => {
                self.slots.push(flow);
                (self.slots.len() - 1) as u32
            }
        };
        let f = &mut self.slots[idx as usize];
        f.prev = NIL;
        f.next = NIL;
        f.list = list_of(bucket, DATAGRAM) as u8;
        self.held[bucket] += 1;
        self.push_back(idx);
        idx
    }

    fn remove(&mut self, idx: u32) -> Flow {
        self.unlink(idx);
        let f = std::mem::take(&mut self.slots[idx as usize]);
        self.held[usize::from(f.list >> 2)] -= 1;
        if let Ok(entry) = self.map.find_entry(f.key.fx_hash(), |&i| i == idx) {
            entry.remove();
        }
        self.free.push(idx);
        f
    }

    /// The list a flow is on.
    fn list(&mut self, idx: u32) -> &mut List {
        &mut self.lists[usize::from(self.slots[idx as usize].list)]
    }

    fn unlink(&mut self, idx: u32) {
        let (prev, next) = {
            let f = &self.slots[idx as usize];
            (f.prev, f.next)
        };
        if prev == NIL {
            self.list(idx).head = next;
        } else {
            self.slots[prev as usize].next = next;
        }
        if next == NIL {
            self.list(idx).tail = prev;
        } else {
            self.slots[next as usize].prev = prev;
        }
        let f = &mut self.slots[idx as usize];
        f.prev = NIL;
        f.next = NIL;
    }

    fn push_back(&mut self, idx: u32) {
        let tail = self.list(idx).tail;
        {
            let f = &mut self.slots[idx as usize];
            f.prev = tail;
            f.next = NIL;
        }
        if tail == NIL {
            self.list(idx).head = idx;
        } else {
            self.slots[tail as usize].next = idx;
        }
        self.list(idx).tail = idx;
    }
}

/// Which side opened a flow first seen mid-conversation: the side on a
/// well-known port is taken for the server.
fn guess_client(key: &FlowKey, sender: Side) -> Side {
    let (sport, dport) = (key.port(sender), key.port(sender.other()));
    if sport < 1024 && dport >= 1024 {
        sender.other()
    } else {
        sender
    }
}

#[cfg(test)]
mod tests;
