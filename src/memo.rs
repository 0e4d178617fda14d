//! A memo that the threads reporting devices share.
//!
//! Devices alike repeat the same work: the same evidence values read by the
//! rules, the same (vendor, model, OS) looked up in the support periods. With
//! a memo per thread, two threads each did that work once per value: on
//! home-mix the rules read 2,152 values against one thread's 1,492. Shared
//! behind a lock, each value is worked out about once; each thread still
//! keeps what it has looked up, so the lock is taken only on its own misses
//! (1,500 of 57,600 lookups).

use std::hash::Hash;
use std::sync::{Arc, Mutex};

use hashbrown::{Equivalent, HashMap};
use rustc_hash::FxBuildHasher;

type Map<K, V> = HashMap<K, V, FxBuildHasher>;

/// A key as it is looked up: it hashes as the key it stands for and
/// compares with it, so that a hit makes no key (each evidence value's
/// memo key was a `String` made for every lookup, hits included).
pub trait Lookup<K>: Hash + Equivalent<K> {
    fn to_key(&self) -> K;
}

/// A key looks itself up.
impl<K: Hash + Eq + Clone> Lookup<K> for K {
    fn to_key(&self) -> K {
        self.clone()
    }
}

pub struct SharedMemo<K, V> {
    local: Map<K, V>,
    shared: Arc<Mutex<Map<K, V>>>,
    /// Entries each map holds at most; a full map is emptied (what repeats
    /// across devices comes back soon).
    cap: usize,
}

impl<K: Hash + Eq + Clone, V: Clone> SharedMemo<K, V> {
    pub fn new(cap: usize) -> SharedMemo<K, V> {
        SharedMemo {
            local: Map::default(),
            shared: Arc::default(),
            cap,
        }
    }

    /// A handle for another thread: the same shared entries, none of its own.
    pub fn share(&self) -> SharedMemo<K, V> {
        SharedMemo {
            local: Map::default(),
            shared: self.shared.clone(),
            cap: self.cap,
        }
    }

    /// The value for `key`, made by `make` (outside the lock) if no thread
    /// has made it yet.
    pub fn get_or_make<Q: Lookup<K>>(&mut self, key: &Q, make: impl FnOnce(&Q) -> V) -> V {
        if let Some(v) = self.local.get(key) {
            return v.clone();
        }
        let found = self.lock().get(key).cloned();
        let v = match found {
            Some(v) => v,
            None => {
                let v = make(key);
                let mut shared = self.lock();
                if shared.len() >= self.cap {
                    shared.clear();
                }
                shared.insert(key.to_key(), v.clone());
                v
            }
        };
        if self.local.len() >= self.cap {
            self.local.clear();
        }
        self.local.insert(key.to_key(), v.clone());
        v
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Map<K, V>> {
        // A thread that panicked holding it left a whole map: entries are
        // inserted whole.
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_value_is_made_once_across_handles() {
        let made = std::sync::atomic::AtomicUsize::new(0);
        let make = |k: &u32| {
            made.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            k * 10
        };
        let mut a = SharedMemo::new(8);
        let mut b = a.share();
        assert_eq!(a.get_or_make(&1, make), 10);
        assert_eq!(b.get_or_make(&1, make), 10);
        assert_eq!(a.get_or_make(&1, make), 10);
        assert_eq!(made.load(std::sync::atomic::Ordering::Relaxed), 1);
        std::thread::scope(|s| {
            s.spawn(|| assert_eq!(b.get_or_make(&2, make), 20));
        });
        assert_eq!(a.get_or_make(&2, make), 20);
        assert_eq!(made.load(std::sync::atomic::Ordering::Relaxed), 2);
    }

    #[test]
    fn full_maps_are_emptied() {
        let mut a = SharedMemo::new(2);
        for k in 0..5u32 {
            assert_eq!(a.get_or_make(&k, |k| k + 1), k + 1);
        }
        assert!(a.local.len() <= 2 && a.lock().len() <= 2);
        assert_eq!(a.get_or_make(&4, |_| 0), 5, "the latest stays");
    }
}
