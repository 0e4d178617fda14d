//! Splits a reassembled byte stream into lines, in bounded memory: a line
//! longer than `MAX_LINE` is cut there and its rest skipped up to the next
//! newline (counted), never buffered.

use super::Dir;
use crate::flow::Chunk;

pub const MAX_LINE: usize = 1024;

/// The lines of both directions of a flow, for line protocols (FTP, HTTP,
/// RTSP): a gap in either direction resets both, as a partial line on one
/// side may belong to a request whose answer is on the other.
#[derive(Default)]
pub struct LineStreams {
    client: Lines,
    server: Lines,
}

impl LineStreams {
    /// Calls `f` with each complete line of `chunk`; on a gap, resets both
    /// directions and calls nothing.
    pub fn feed(&mut self, dir: Dir, chunk: Chunk<'_>, f: impl FnMut(&[u8])) {
        match chunk {
            Chunk::Data(d) => match dir {
                Dir::ToServer => self.client.feed(d, f),
                Dir::ToClient => self.server.feed(d, f),
            },
            Chunk::Gap(_) => {
                self.client.reset();
                self.server.reset();
            }
        }
    }
}

#[derive(Default)]
pub struct Lines {
    buf: Vec<u8>,
    skipping: bool,
    pub overlong: u32,
}

impl Lines {
    /// Feeds bytes; calls `f` with each complete line, without its CR LF.
    pub fn feed(&mut self, mut data: &[u8], mut f: impl FnMut(&[u8])) {
        while let Some(nl) = memchr::memchr(b'\n', data) {
            let (part, rest) = data.split_at(nl);
            data = &rest[1..];
            if self.skipping {
                self.skipping = false;
                self.buf.clear();
                continue;
            }
            let line: &[u8] = if self.buf.is_empty() {
                part
            } else {
                self.buf.extend_from_slice(
                    &part[..part.len().min(MAX_LINE - self.buf.len().min(MAX_LINE))],
                );
                &self.buf
            };
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            f(line);
            self.buf.clear();
        }
        if self.skipping {
            return;
        }
        let room = MAX_LINE - self.buf.len();
        if data.len() > room {
            self.buf.extend_from_slice(&data[..room]);
            let line = std::mem::take(&mut self.buf);
            f(&line);
            self.buf = line;
            self.buf.clear();
            self.skipping = true;
            self.overlong += 1;
        } else {
            self.buf.extend_from_slice(data);
        }
    }

    /// A gap in the stream: a partial line cannot be trusted.
    pub fn reset(&mut self) {
        self.buf.clear();
        self.skipping = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(chunks: &[&[u8]]) -> Vec<String> {
        let mut l = Lines::default();
        let mut out = Vec::new();
        for c in chunks {
            l.feed(c, |x| out.push(String::from_utf8_lossy(x).into_owned()));
        }
        out
    }

    #[test]
    fn splits_across_chunks() {
        assert_eq!(
            collect(&[b"USER a", b"nna\r\nPASS x\r", b"\n"]),
            ["USER anna", "PASS x"]
        );
    }

    #[test]
    fn overlong_lines_are_cut_not_buffered() {
        let long = vec![b'a'; 5000];
        let out = collect(&[&long, b"\r\nUSER b\r\n"]);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].len(), MAX_LINE);
        assert_eq!(out[1], "USER b");
    }
}
