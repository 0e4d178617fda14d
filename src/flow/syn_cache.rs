//! A fixed-size, direct-mapped cache of SYNs that have not been answered.
//!
//! A scanner's SYN to a million addresses must not create a million flows.
//! A SYN only lands here; the flow is created when the other side answers
//! (SYN-ACK, RST) or the client sends more. A colliding SYN overwrites the
//! older one, which is then counted as an unanswered attempt, so memory is
//! fixed whatever the scan rate (like the BSD kernel's SYN cache).
//!
//! The cache is cut into one region per shard bucket, and a key's slot lies
//! in its bucket's region: a worker holds just the regions of the buckets it
//! owns, and which SYN displaces which is then the same however many workers
//! share the packets, so the report is too.

use super::key::{FlowKey, SHARD_BUCKETS, Side};
use crate::capture::Nanos;
use crate::decode::Mac;

#[derive(Clone, Copy, Debug)]
pub struct SynEntry {
    pub key: FlowKey,
    pub client: Side,
    pub ts: Nanos,
    pub last_ts: Nanos,
    pub client_mac: Option<Mac>,
    /// The SYN's sequence number: the client's ISN.
    pub seq: u32,
    pub packets: u32,
    pub bytes: u64,
}

pub struct SynCache {
    slots: Box<[Option<SynEntry>]>,
    /// log2 of the slots in a bucket's region.
    region_bits: u32,
    /// Each bucket's region among this cache's (0 for buckets not owned,
    /// whose keys do not come here).
    region: [u8; SHARD_BUCKETS],
    live: usize,
}

impl SynCache {
    /// The regions of the shard `buckets` (a mask) of a cache of `capacity`
    /// slots in all, rounded up to a power of two per bucket.
    pub fn new(capacity: usize, buckets: u64) -> SynCache {
        let per_bucket = capacity.div_ceil(SHARD_BUCKETS).next_power_of_two();
        let mut region = [0u8; SHARD_BUCKETS];
        let mut owned = 0u8;
        for (b, r) in region.iter_mut().enumerate() {
            if buckets & (1 << b) != 0 {
                *r = owned;
                owned += 1;
            }
        }
        SynCache {
            slots: vec![None; per_bucket * usize::from(owned.max(1))].into_boxed_slice(),
            region_bits: per_bucket.trailing_zeros(),
            region,
            live: 0,
        }
    }

    /// The slot of `key`, whose [`FlowKey::fx_hash`] is `x`.
    fn index(&self, key: &FlowKey, x: u64) -> usize {
        // The slot within the region from the top bits of the hash
        // multiplied: Fx leaves the low bits weak.
        let m = x.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let within = (m >> (64 - self.region_bits.max(1))) as usize & ((1 << self.region_bits) - 1);
        (usize::from(self.region[key.shard_bucket()]) << self.region_bits) | within
    }

    /// Records a SYN whose key's [`FlowKey::fx_hash`] is `hash` (the flow
    /// table has it already). Returns the entry it displaced (an attempt
    /// that ended unanswered), if any.
    pub fn insert(&mut self, e: SynEntry, hash: u64) -> Option<SynEntry> {
        let i = self.index(&e.key, hash);
        let slot = &mut self.slots[i];
        match slot {
            Some(old) if old.key == e.key && old.client == e.client => {
                // A retransmitted SYN.
                old.packets += 1;
                old.bytes += e.bytes;
                old.last_ts = e.ts;
                None
            }
            Some(_) => slot.replace(e),
            None => {
                self.live += 1;
                *slot = Some(e);
                None
            }
        }
    }

    /// Starts fetching the slot of `key` (whose [`FlowKey::fx_hash`] is
    /// `hash`) into the CPU cache, for an [`SynCache::insert`] a little later.
    #[inline]
    pub fn prefetch(&self, key: &FlowKey, hash: u64) {
        let slot: *const Option<SynEntry> = &self.slots[self.index(key, hash)];
        crate::capture::prefetch(slot.cast());
    }

    /// Takes the SYN of this flow out, if it is cached (`hash`: the key's
    /// [`FlowKey::fx_hash`]).
    pub fn take(&mut self, key: &FlowKey, hash: u64) -> Option<SynEntry> {
        let i = self.index(key, hash);
        let slot = &mut self.slots[i];
        if slot.as_ref().is_some_and(|e| e.key == *key) {
            self.live -= 1;
            slot.take()
        } else {
            None
        }
    }

    pub fn live(&self) -> usize {
        self.live
    }

    /// Empties the cache, handing on each remaining attempt in key order.
    pub fn drain(&mut self, mut f: impl FnMut(SynEntry)) {
        let mut rest: Vec<SynEntry> = self.slots.iter_mut().filter_map(Option::take).collect();
        rest.sort_by_key(|e| (e.ts, e.key));
        self.live = 0;
        rest.into_iter().for_each(&mut f);
    }
}
