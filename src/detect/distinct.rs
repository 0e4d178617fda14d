//! Counting distinct values in bounded memory: an exact set while small,
//! then a HyperLogLog sketch (Flajolet et al. 2007, with the small-range
//! correction), so a scan of a million addresses costs 16 KiB, not a
//! million entries. Sketches merge by register-wise max, so workers that saw
//! parts of one source's traffic combine exactly as if one had seen it all.

/// Values kept exactly before switching to the sketch.
const EXACT_MAX: usize = 64;
/// 2^16 one-byte registers (64 KiB): standard error 1.04/sqrt(2^16) = 0.4 %.
const P: u32 = 16;
const M: usize = 1 << P;

/// Sketches one owner (a worker's detector) may hold: 64 x 64 KiB = 4 MiB.
/// Past it, a set stays exact at `EXACT_MAX` and reports that as a lower bound.
pub const MAX_SKETCHES: u32 = 64;

#[derive(Clone, Debug)]
pub enum Distinct {
    Exact(Vec<u64>),
    /// Full, and no sketch budget left: at least this many.
    Saturated(Vec<u64>),
    Sketch(Box<[u8]>),
}

impl Default for Distinct {
    fn default() -> Self {
        Distinct::Exact(Vec::new())
    }
}

/// A 64-bit mix of a value (splitmix64's finaliser): HyperLogLog needs
/// uniformly spread hash bits.
pub fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl Distinct {
    /// Adds an already mixed hash; `budget` is the owner's sketches left.
    #[inline]
    pub fn insert(&mut self, h: u64, budget: &mut u32) {
        match self {
            Distinct::Exact(v) => {
                if v.contains(&h) {
                    return;
                }
                if v.len() < EXACT_MAX {
                    v.push(h);
                    return;
                }
                if *budget == 0 {
                    *self = Distinct::Saturated(std::mem::take(v));
                    return;
                }
                *budget -= 1;
                let mut regs = vec![0u8; M].into_boxed_slice();
                for &x in v.iter() {
                    add(&mut regs, x);
                }
                add(&mut regs, h);
                *self = Distinct::Sketch(regs);
            }
            Distinct::Saturated(_) => {}
            Distinct::Sketch(regs) => add(regs, h),
        }
    }

    pub fn count(&self) -> u64 {
        match self {
            Distinct::Exact(v) | Distinct::Saturated(v) => v.len() as u64,
            Distinct::Sketch(regs) => estimate(regs),
        }
    }

    /// A lower bound only: the sketch budget ran out.
    pub fn saturated(&self) -> bool {
        matches!(self, Distinct::Saturated(_))
    }

    /// Union with another owner's set. Merging happens once, at the end of a
    /// run, so it may create a sketch without budget.
    pub fn merge(&mut self, other: &Distinct) {
        let mut unlimited = u32::MAX;
        match other {
            Distinct::Exact(v) => v.iter().for_each(|&h| self.insert(h, &mut unlimited)),
            Distinct::Saturated(v) => {
                v.iter().for_each(|&h| self.insert(h, &mut unlimited));
                if let Distinct::Exact(mine) = self {
                    *self = Distinct::Saturated(std::mem::take(mine));
                }
            }
            Distinct::Sketch(o) => match self {
                Distinct::Exact(v) | Distinct::Saturated(v) => {
                    let mut regs = o.clone();
                    v.iter().for_each(|&h| add(&mut regs, h));
                    *self = Distinct::Sketch(regs);
                }
                Distinct::Sketch(regs) => {
                    for (r, &x) in regs.iter_mut().zip(o.iter()) {
                        *r = (*r).max(x);
                    }
                }
            },
        }
    }
}

#[inline]
fn add(regs: &mut [u8], h: u64) {
    let idx = (h >> (64 - P)) as usize;
    let rest = h << P;
    let rank = (rest.leading_zeros() + 1).min(64 - P + 1) as u8;
    if regs[idx] < rank {
        regs[idx] = rank;
    }
}

fn estimate(regs: &[u8]) -> u64 {
    let m = M as f64;
    let sum: f64 = regs.iter().map(|&r| 2f64.powi(-i32::from(r))).sum();
    let alpha = 0.7213 / (1.0 + 1.079 / m);
    let raw = alpha * m * m / sum;
    let zeros = regs.iter().filter(|&&r| r == 0).count();
    let e = if raw <= 2.5 * m && zeros > 0 {
        // Linear counting for small cardinalities.
        m * (m / zeros as f64).ln()
    } else {
        raw
    };
    e.round() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: u32 = MAX_SKETCHES;

    #[test]
    fn exact_while_small() {
        let mut d = Distinct::default();
        for i in 0..50u64 {
            d.insert(mix(i), &mut B.clone());
            d.insert(mix(i), &mut B.clone());
        }
        assert_eq!(d.count(), 50);
        assert!(matches!(d, Distinct::Exact(_)));
    }

    #[test]
    fn sketch_within_two_percent() {
        for n in [1_000u64, 100_000, 1_000_000] {
            let mut d = Distinct::default();
            for i in 0..n {
                d.insert(mix(i.wrapping_mul(0x9E37_79B9)), &mut B.clone());
            }
            let c = d.count() as f64;
            assert!((c - n as f64).abs() / (n as f64) < 0.02, "{n}: {c}");
        }
    }

    #[test]
    fn merge_is_a_union() {
        let (mut a, mut b, mut all) = (
            Distinct::default(),
            Distinct::default(),
            Distinct::default(),
        );
        for i in 0..30_000u64 {
            let h = mix(i);
            let mut budget = B;
            if i % 3 == 0 {
                a.insert(h, &mut budget)
            } else {
                b.insert(h, &mut budget)
            }
            if i < 20_000 {
                // overlap: both saw these
                a.insert(h, &mut budget);
            }
            all.insert(h, &mut budget);
        }
        a.merge(&b);
        assert_eq!(a.count(), all.count());
        let mut small = Distinct::default();
        small.insert(mix(1), &mut B.clone());
        small.merge(&all);
        assert_eq!(small.count(), all.count());
    }

    #[test]
    fn no_budget_means_a_lower_bound_not_memory() {
        let mut d = Distinct::default();
        let mut budget = 0;
        for i in 0..10_000u64 {
            d.insert(mix(i), &mut budget);
        }
        assert!(d.saturated());
        assert_eq!(d.count(), EXACT_MAX as u64);
    }
}
