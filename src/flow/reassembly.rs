//! Light TCP reassembly for the cleartext protocols: in-order bytes of one
//! direction, retransmissions dropped, a small bounded out-of-order buffer,
//! and a cap on the bytes handed on (logins and banners sit at the start).
//!
//! In-order segments are handed on straight from the packet; only
//! out-of-order ones are copied, and at most `OOO_MAX_BYTES` of them.

/// Bytes handed on per direction before the stream stops.
pub const STREAM_CAP: u32 = 16 * 1024;
/// Out-of-order segments kept per direction.
const OOO_MAX_SEGMENTS: usize = 8;
/// Out-of-order bytes kept per direction.
const OOO_MAX_BYTES: usize = 8 * 1024;

/// What an analyzer is given.
#[derive(Debug, PartialEq, Eq)]
pub enum Chunk<'a> {
    Data(&'a [u8]),
    /// Bytes that were never seen (lost or not captured): the analyzer should
    /// resynchronise rather than glue the two sides of the hole together.
    Gap(u32),
}

#[derive(Debug, Default)]
pub struct Stream {
    next: u32,
    started: bool,
    delivered: u32,
    ooo: Vec<(u32, Box<[u8]>)>,
    ooo_bytes: usize,
}

/// `a` comes before `b` in sequence space.
fn before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

impl Stream {
    /// True once `STREAM_CAP` bytes have been handed on.
    pub fn capped(&self) -> bool {
        self.delivered >= STREAM_CAP
    }

    /// Starts the stream at a known next sequence number (ISN + 1 from the
    /// handshake), so that a first payload arriving out of order is kept.
    pub fn start_at(&mut self, next: u32) {
        self.started = true;
        self.next = next;
    }

    pub fn segment(
        &mut self,
        seq: u32,
        syn: bool,
        payload: &[u8],
        out: &mut impl FnMut(Chunk<'_>),
    ) {
        let mut seq = if syn { seq.wrapping_add(1) } else { seq };
        if !self.started {
            self.started = true;
            self.next = seq;
        }
        if payload.is_empty() || self.capped() {
            return;
        }
        let mut payload = payload;
        if before(seq, self.next) {
            let overlap = self.next.wrapping_sub(seq) as usize;
            if overlap >= payload.len() {
                return; // a retransmission of bytes already handed on
            }
            payload = &payload[overlap..];
            seq = self.next;
        }
        if seq == self.next {
            self.deliver(payload, out);
            self.drain(out);
            return;
        }
        if self.ooo.len() < OOO_MAX_SEGMENTS && self.ooo_bytes + payload.len() <= OOO_MAX_BYTES {
            self.ooo_bytes += payload.len();
            self.ooo.push((seq, payload.into()));
            return;
        }
        // No room to wait for the hole to fill: declare it lost.
        let earliest = self
            .ooo
            .iter()
            .map(|(s, _)| *s)
            .fold(seq, |a, s| if before(s, a) { s } else { a });
        out(Chunk::Gap(earliest.wrapping_sub(self.next)));
        self.next = earliest;
        self.drain(out);
        if !before(seq, self.next) && seq != self.next {
            // Still ahead after the drain: skip to it too.
            out(Chunk::Gap(seq.wrapping_sub(self.next)));
            self.next = seq;
        }
        if seq == self.next {
            self.deliver(payload, out);
            self.drain(out);
        } else if before(seq, self.next) {
            let overlap = self.next.wrapping_sub(seq) as usize;
            if overlap < payload.len() {
                self.deliver(&payload[overlap..], out);
                self.drain(out);
            }
        }
    }

    /// At the end of the flow: whatever waits behind a hole is handed on after a gap.
    pub fn flush(&mut self, out: &mut impl FnMut(Chunk<'_>)) {
        while !self.ooo.is_empty() && !self.capped() {
            let earliest = self
                .ooo
                .iter()
                .map(|(s, _)| *s)
                .fold(self.ooo[0].0, |a, s| if before(s, a) { s } else { a });
            if before(self.next, earliest) {
                out(Chunk::Gap(earliest.wrapping_sub(self.next)));
                self.next = earliest;
            }
            self.drain(out);
        }
        self.ooo.clear();
        self.ooo_bytes = 0;
    }

    fn deliver(&mut self, payload: &[u8], out: &mut impl FnMut(Chunk<'_>)) {
        let room = (STREAM_CAP - self.delivered.min(STREAM_CAP)) as usize;
        let n = payload.len().min(room);
        if n > 0 {
            out(Chunk::Data(&payload[..n]));
        }
        self.delivered += n as u32;
        // Sequence space moves on by the whole segment even past the cap.
        self.next = self.next.wrapping_add(payload.len() as u32);
    }

    /// Hands on buffered segments that now join the in-order stream.
    fn drain(&mut self, out: &mut impl FnMut(Chunk<'_>)) {
        while let Some(i) = self.ooo.iter().position(|(s, _)| !before(self.next, *s)) {
            let (seq, data) = self.ooo.swap_remove(i);
            self.ooo_bytes -= data.len();
            let overlap = self.next.wrapping_sub(seq) as usize;
            if overlap < data.len() {
                self.deliver(&data[overlap..], out);
            }
        }
        if self.capped() {
            self.ooo.clear();
            self.ooo_bytes = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(segs: &[(u32, bool, &[u8])], flush: bool) -> Vec<String> {
        let mut s = Stream::default();
        let mut got = Vec::new();
        let mut out = |c: Chunk<'_>| {
            got.push(match c {
                Chunk::Data(d) => String::from_utf8_lossy(d).into_owned(),
                Chunk::Gap(n) => format!("<gap {n}>"),
            })
        };
        for (seq, syn, p) in segs {
            s.segment(*seq, *syn, p, &mut out);
        }
        if flush {
            s.flush(&mut out);
        }
        got
    }

    #[test]
    fn in_order_after_syn() {
        assert_eq!(
            run(
                &[(99, true, b""), (100, false, b"ab"), (102, false, b"cd")],
                false
            ),
            ["ab", "cd"]
        );
    }

    #[test]
    fn retransmission_and_overlap_dropped() {
        let got = run(
            &[
                (0, true, b""),
                (1, false, b"abc"),
                (1, false, b"abc"),
                (2, false, b"bcde"),
            ],
            false,
        );
        assert_eq!(got, ["abc", "de"]);
    }

    #[test]
    fn out_of_order_is_reordered() {
        let got = run(
            &[(0, true, b""), (4, false, b"def"), (1, false, b"abc")],
            false,
        );
        assert_eq!(got, ["abc", "def"]);
    }

    #[test]
    fn hole_reported_at_flush() {
        let got = run(
            &[(0, true, b""), (1, false, b"ab"), (10, false, b"xy")],
            true,
        );
        assert_eq!(got, ["ab", "<gap 7>", "xy"]);
    }

    #[test]
    fn sequence_wraps() {
        let got = run(
            &[
                (u32::MAX - 1, true, b""),
                (u32::MAX, false, b"ab"),
                (1, false, b"cd"),
            ],
            false,
        );
        assert_eq!(got, ["ab", "cd"]);
    }

    #[test]
    fn midstream_start_and_cap() {
        let big = vec![b'x'; STREAM_CAP as usize + 100];
        let mut s = Stream::default();
        let mut n = 0usize;
        s.segment(5000, false, &big, &mut |c| {
            if let Chunk::Data(d) = c {
                n += d.len()
            }
        });
        assert_eq!(n, STREAM_CAP as usize);
        assert!(s.capped());
    }

    #[test]
    fn full_ooo_buffer_declares_gap_and_stays_bounded() {
        let mut segs: Vec<(u32, bool, &[u8])> = vec![(0, true, b"")];
        // Hole at 1..100, then many future segments.
        let data = [b'z'; 10];
        for i in 0..20u32 {
            segs.push((100 + i * 10, false, &data));
        }
        let got = run(&segs, true);
        assert_eq!(got[0], "<gap 99>");
        let total: usize = got
            .iter()
            .filter(|g| !g.starts_with('<'))
            .map(|g| g.len())
            .sum();
        assert_eq!(total, 200);
    }
}
