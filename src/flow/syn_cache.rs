//! A fixed-size, direct-mapped cache of SYNs that have not been answered.
//!
//! A scanner's SYN to a million addresses must not create a million flows.
//! A SYN only lands here; the flow is created when the other side answers
//! (SYN-ACK, RST) or the client sends more. A colliding SYN overwrites the
//! older one, which is then counted as an unanswered attempt, so memory is
//! fixed whatever the scan rate (like the BSD kernel's SYN cache).

use std::hash::{Hash, Hasher};

use super::key::{FlowKey, Side};
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
    mask: usize,
    live: usize,
}

impl SynCache {
    /// `capacity` is rounded up to a power of two.
    pub fn new(capacity: usize) -> SynCache {
        let n = capacity.next_power_of_two().max(1);
        SynCache {
            slots: vec![None; n].into_boxed_slice(),
            mask: n - 1,
            live: 0,
        }
    }

    fn index(&self, key: &FlowKey) -> usize {
        let mut h = rustc_hash::FxHasher::default();
        key.hash(&mut h);
        let x = h.finish();
        (x ^ (x >> 32)) as usize & self.mask
    }

    /// Records a SYN. Returns the entry it displaced (an attempt that ended
    /// unanswered), if any.
    pub fn insert(&mut self, e: SynEntry) -> Option<SynEntry> {
        let i = self.index(&e.key);
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

    /// Takes the SYN of this flow out, if it is cached.
    pub fn take(&mut self, key: &FlowKey) -> Option<SynEntry> {
        let i = self.index(key);
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
