//! Merging the workers' inventories as the report reads them, a key range
//! at a time. Each worker hands back its devices in key order; the lists are
//! cut at the same keys into chunks, so the chunks can be merged on any
//! thread, in any order, and still come out in key order when put back in
//! turn. Folding one whole inventory into another first cost the one thread
//! left 16 ms of home-mix's two-thread run while the other had nothing to do.

use super::{Device, DeviceKey};

/// One key range of every worker's device list.
pub struct KeyChunk<'a> {
    lists: Vec<&'a mut [(DeviceKey, Device)]>,
}

/// Cuts `lists` (each in key order, a key at most once per list) into chunks
/// of about `size` keys: at every `size`-th key of the longest list, each
/// list's other keys going with the range they fall in.
pub fn key_chunks(lists: &mut [Vec<(DeviceKey, Device)>], size: usize) -> Vec<KeyChunk<'_>> {
    let size = size.max(1);
    let Some(spine) = (0..lists.len()).max_by_key(|&i| (lists[i].len(), std::cmp::Reverse(i)))
    else {
        return Vec::new();
    };
    // The first key of every chunk but the first.
    let cuts: Vec<DeviceKey> = lists[spine]
        .iter()
        .step_by(size)
        .skip(1)
        .map(|d| d.0)
        .collect();
    let mut chunks: Vec<KeyChunk<'_>> = (0..=cuts.len())
        .map(|_| KeyChunk {
            lists: Vec::with_capacity(lists.len()),
        })
        .collect();
    for list in lists.iter_mut() {
        let mut rest: &mut [(DeviceKey, Device)] = list;
        for (chunk, cut) in chunks.iter_mut().zip(&cuts) {
            let at = rest.partition_point(|d| d.0 < *cut);
            let (here, later) = std::mem::take(&mut rest).split_at_mut(at);
            chunk.lists.push(here);
            rest = later;
        }
        chunks
            .last_mut()
            .expect("one chunk at least")
            .lists
            .push(rest);
    }
    chunks
}

/// Cuts `lists` (each in key order, a key at most once per list) down to
/// the `n` least keys of their union, as one worker holding every device
/// would have kept them (`WhenFull::KeepLeastKeys`); true if any were cut.
/// Each worker kept its own `n` least, so the union's `n` least came through
/// whole.
pub fn keep_least_keys(lists: &mut [Vec<(DeviceKey, Device)>], n: usize) -> bool {
    // Only a flood gets past this: a home's few dozen devices return here.
    if lists.iter().map(Vec::len).sum::<usize>() <= n {
        return false;
    }
    let mut keys: Vec<DeviceKey> = lists.iter().flatten().map(|d| d.0).collect();
    keys.sort_unstable();
    keys.dedup();
    let Some(&first_cut) = keys.get(n) else {
        return false;
    };
    for l in lists.iter_mut() {
        l.truncate(l.partition_point(|d| d.0 < first_cut));
    }
    true
}

impl<'a> KeyChunk<'a> {
    /// The chunk's devices seen sending, in key order, each merged from
    /// every list that holds its key into the first that does. The others
    /// are read, not taken apart: a device is freed whole with its list,
    /// after the report. Freed as they were reported, on two threads at
    /// once, they made two-thread reporting of home-mix 13 ms slower, and
    /// freeing only the parts a merge left over cost it 7-10 ms: each thread
    /// freed into the heap the other was allocating from, and they contended
    /// for its lock.
    pub fn merged(self) -> impl Iterator<Item = (DeviceKey, &'a mut Device)> {
        let mut lists: Vec<_> = self.lists.into_iter().map(|l| l.iter_mut()).collect();
        let mut heads: Vec<Option<&'a mut (DeviceKey, Device)>> =
            lists.iter_mut().map(Iterator::next).collect();
        std::iter::from_fn(move || {
            loop {
                let key = heads.iter().flatten().map(|d| d.0).min()?;
                let mut merged: Option<&'a mut Device> = None;
                for (head, list) in heads.iter_mut().zip(lists.iter_mut()) {
                    if let Some(d) = head.take_if(|d| d.0 == key) {
                        match &mut merged {
                            Some(m) => m.merge(&d.1),
                            None => merged = Some(&mut d.1),
                        }
                        *head = list.next();
                    }
                }
                match merged {
                    Some(d) if d.seen_as_source => return Some((key, d)),
                    _ => continue,
                }
            }
        })
    }
}

/// All of `lists` merged in one go: the devices seen sending, in key order
/// (for tests: the report merges a chunk at a time).
#[cfg(test)]
pub fn merge_all(mut lists: Vec<Vec<(DeviceKey, Device)>>) -> Vec<(DeviceKey, Device)> {
    key_chunks(&mut lists, usize::MAX)
        .into_iter()
        .flat_map(KeyChunk::merged)
        .map(|(k, d)| (k, std::mem::take(d)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(keys: &[u8], packets: u64) -> Vec<(DeviceKey, Device)> {
        keys.iter()
            .map(|&k| {
                let d = Device {
                    seen_as_source: k != 0,
                    packets,
                    ..Device::default()
                };
                (DeviceKey::Mac([0, 0, 0, 0, 0, k]), d)
            })
            .collect()
    }

    fn merged(mut lists: Vec<Vec<(DeviceKey, Device)>>, size: usize) -> Vec<(u8, u64)> {
        key_chunks(&mut lists, size)
            .into_iter()
            .flat_map(KeyChunk::merged)
            .map(|(k, d)| match k {
                DeviceKey::Mac(m) => (m[5], d.packets),
                DeviceKey::Ip(_) => unreachable!(),
            })
            .collect()
    }

    #[test]
    fn chunks_merge_shared_keys_and_keep_key_order() {
        // Key 0 is never seen sending: merged, then left out.
        let a = || list(&[0, 2, 3, 5, 8, 9, 12], 1);
        let b = || list(&[0, 1, 3, 4, 9, 13, 14, 15], 10);
        let c = || list(&[6, 9], 100);
        let want = vec![
            (1, 10),
            (2, 1),
            (3, 11),
            (4, 10),
            (5, 1),
            (6, 100),
            (8, 1),
            (9, 111),
            (12, 1),
            (13, 10),
            (14, 10),
            (15, 10),
        ];
        for size in [1, 2, 3, 64] {
            assert_eq!(merged(vec![a(), b(), c()], size), want, "size {size}");
            assert_eq!(merged(vec![c(), b(), a()], size), want, "size {size}");
        }
        assert_eq!(merge_all(vec![a(), b(), c()]).len(), want.len());
    }

    #[test]
    fn least_keys_of_the_union_are_kept() {
        let keys = |lists: &[Vec<(DeviceKey, Device)>]| -> Vec<Vec<u8>> {
            let last = |d: &(DeviceKey, Device)| match d.0 {
                DeviceKey::Mac(m) => m[5],
                DeviceKey::Ip(_) => unreachable!(),
            };
            lists.iter().map(|l| l.iter().map(last).collect()).collect()
        };
        let mut lists = vec![
            list(&[1, 4, 6, 9], 1),
            list(&[2, 4, 5, 9], 1),
            list(&[7], 1),
        ];
        // Eight distinct keys: four fit, the four least are 1, 2, 4, 5.
        assert!(keep_least_keys(&mut lists, 4));
        assert_eq!(keys(&lists), vec![vec![1, 4], vec![2, 4, 5], vec![]]);
        // Exactly as many as fit, though the lists hold more entries.
        assert!(!keep_least_keys(&mut lists, 4));
        assert_eq!(keys(&lists), vec![vec![1, 4], vec![2, 4, 5], vec![]]);
        assert!(!keep_least_keys(&mut [], 0));
        assert!(keep_least_keys(&mut [list(&[3], 1)], 0));
    }

    #[test]
    fn chunks_follow_the_longest_list() {
        let mut lists = vec![list(&[1, 2], 1), list(&[1, 3, 5, 7, 9], 1), Vec::new()];
        let chunks = key_chunks(&mut lists, 2);
        let sizes: Vec<Vec<usize>> = chunks
            .iter()
            .map(|c| c.lists.iter().map(|l| l.len()).collect())
            .collect();
        // Cut at 5 and 9; the short list's keys fall in the first range.
        assert_eq!(sizes, vec![vec![2, 2, 0], vec![0, 2, 0], vec![0, 1, 0]]);
        assert!(key_chunks(&mut [], 2).is_empty());
        assert_eq!(merged(vec![Vec::new(), Vec::new()], 4), vec![]);
    }
}
