//! serde_json's pretty layout (two-space indent), byte for byte, with two
//! differences that let a large report be written fast: a value can start at
//! any depth (so the device entries of a report can be rendered apart, on
//! several threads, and joined), and a line break with its indent is one
//! write, not one per level.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::ser::Formatter;

/// A line break and enough indent for any depth the report reaches.
const BREAK: &[u8] = b"\n                                                                ";

pub struct Pretty {
    depth: usize,
    has_value: bool,
}

impl Pretty {
    /// Writes `value` as if it stood at `depth` in a pretty-printed document.
    pub fn write_at(out: &mut impl Write, depth: usize, value: &impl Serialize) -> io::Result<()> {
        let fmt = Pretty {
            depth,
            has_value: false,
        };
        value
            .serialize(&mut serde_json::Serializer::with_formatter(out, fmt))
            .map_err(io::Error::from)
    }

    /// A line break and the indent of `depth`, after `,` unless `first`.
    pub fn line(out: &mut (impl Write + ?Sized), depth: usize, first: bool) -> io::Result<()> {
        if !first {
            out.write_all(b",")?;
        }
        let n = 1 + 2 * depth;
        match BREAK.get(..n) {
            Some(b) => out.write_all(b),
            None => {
                out.write_all(BREAK)?;
                (BREAK.len()..n).try_for_each(|_| out.write_all(b" "))
            }
        }
    }
}

impl Pretty {
    fn open<W: ?Sized + Write>(&mut self, w: &mut W, bracket: &[u8]) -> io::Result<()> {
        self.depth += 1;
        self.has_value = false;
        w.write_all(bracket)
    }

    fn close<W: ?Sized + Write>(&mut self, w: &mut W, bracket: &[u8]) -> io::Result<()> {
        self.depth -= 1;
        if self.has_value {
            Pretty::line(w, self.depth, true)?;
        }
        w.write_all(bracket)
    }
}

impl Formatter for Pretty {
    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.open(w, b"[")
    }

    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.close(w, b"]")
    }

    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.open(w, b"{")
    }

    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.close(w, b"}")
    }

    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        Pretty::line(w, self.depth, first)
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        Pretty::line(w, self.depth, first)
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    fn end_array_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    fn end_object_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_bytes_as_serde_json_pretty() {
        let v = serde_json::json!({
            "a": [1, 2.5, {"b": [], "c": {}, "d": [[["deep", {"e": null}]]]}],
            "f": "x\"y",
            "g": [],
            "h": {"i": [true, false]}
        });
        let mut ours = Vec::new();
        Pretty::write_at(&mut ours, 0, &v).unwrap();
        assert_eq!(
            String::from_utf8(ours).unwrap(),
            serde_json::to_string_pretty(&v).unwrap()
        );
        // Deeper than the break buffer's indent.
        let mut deep = serde_json::json!(1);
        for _ in 0..40 {
            deep = serde_json::json!([deep]);
        }
        let mut ours = Vec::new();
        Pretty::write_at(&mut ours, 0, &deep).unwrap();
        assert_eq!(
            String::from_utf8(ours).unwrap(),
            serde_json::to_string_pretty(&deep).unwrap()
        );
    }
}
