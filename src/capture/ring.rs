//! `monitor -w FILE`: the last frames captured, kept as evidence in a ring
//! of pcap files (tcpdump's `-w FILE -C SIZE -W COUNT`): `FILE0` …
//! `FILE{COUNT-1}`, the oldest overwritten when the newest is full.

use std::fs::File;
use std::io::{BufWriter, Write};

use super::Frame;

pub struct Ring {
    base: String,
    count: usize,
    /// Bytes per file.
    size: u64,
    dlt: u32,
    snaplen: u32,
    index: usize,
    written: u64,
    out: Option<BufWriter<File>>,
    /// The first write error, reported once; the ring stops then.
    pub error: Option<String>,
}

impl Ring {
    /// A ring of `count` files of `size_mb` MB each for frames of link type `dlt`.
    pub fn create(
        base: &str,
        count: usize,
        size_mb: u64,
        dlt: u32,
        snaplen: u32,
    ) -> std::io::Result<Ring> {
        let mut r = Ring {
            base: base.to_string(),
            count: count.max(1),
            size: (size_mb.max(1)) << 20,
            dlt,
            snaplen,
            index: 0,
            written: 0,
            out: None,
            error: None,
        };
        r.open(0)?;
        Ok(r)
    }

    pub fn file_name(base: &str, i: usize) -> String {
        format!("{base}{i}")
    }

    fn open(&mut self, i: usize) -> std::io::Result<()> {
        let mut f =
            BufWriter::with_capacity(64 << 10, File::create(Self::file_name(&self.base, i))?);
        // The classic pcap header, microsecond timestamps, this host's byte order.
        f.write_all(&0xa1b2_c3d4u32.to_ne_bytes())?;
        f.write_all(&2u16.to_ne_bytes())?;
        f.write_all(&4u16.to_ne_bytes())?;
        f.write_all(&[0; 8])?;
        f.write_all(&self.snaplen.to_ne_bytes())?;
        f.write_all(&self.dlt.to_ne_bytes())?;
        self.out = Some(f);
        self.index = i;
        self.written = 24;
        Ok(())
    }

    pub fn write(&mut self, fr: &Frame<'_>) {
        if self.error.is_some() {
            return;
        }
        if let Err(e) = self.try_write(fr) {
            self.error = Some(format!(
                "writing {}: {e}",
                Self::file_name(&self.base, self.index)
            ));
            self.out = None;
        }
    }

    fn try_write(&mut self, fr: &Frame<'_>) -> std::io::Result<()> {
        let len = 16 + fr.data.len() as u64;
        if self.written + len > self.size && self.written > 24 {
            if let Some(mut f) = self.out.take() {
                f.flush()?;
            }
            self.open((self.index + 1) % self.count)?;
        }
        let Some(f) = &mut self.out else {
            return Ok(());
        };
        let secs = (fr.ts / 1_000_000_000) as u32;
        let usecs = ((fr.ts % 1_000_000_000) / 1_000) as u32;
        f.write_all(&secs.to_ne_bytes())?;
        f.write_all(&usecs.to_ne_bytes())?;
        f.write_all(&(fr.data.len() as u32).to_ne_bytes())?;
        f.write_all(&fr.orig_len.to_ne_bytes())?;
        f.write_all(fr.data)?;
        self.written += len;
        Ok(())
    }

    /// Pushes what is buffered to the file (once a second), so the ring is
    /// readable while the monitor runs.
    pub fn flush(&mut self) {
        if let Some(f) = &mut self.out
            && let Err(e) = f.flush()
        {
            self.error = Some(format!(
                "writing {}: {e}",
                Self::file_name(&self.base, self.index)
            ));
            self.out = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::{CaptureFile, LinkType};

    #[test]
    fn rotates_over_its_files_and_each_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("ring").display().to_string();
        let mut r = Ring::create(&base, 3, 1, 1, 65535).unwrap();
        let data = vec![0xabu8; 1000];
        // 4 MB of frames through a ring of three 1 MB files.
        for i in 0..4000u64 {
            r.write(&Frame {
                ts: 1_700_000_000_000_000_000 + i * 1000,
                link: LinkType::Ethernet,
                data: &data,
                orig_len: 1000,
            });
        }
        r.flush();
        assert!(r.error.is_none());
        for i in 0..3 {
            let name = Ring::file_name(&base, i);
            let len = std::fs::metadata(&name).unwrap().len();
            assert!(len <= 1 << 20, "{name}: {len}");
            let mut f = CaptureFile::open(&name).unwrap();
            let mut n = 0;
            f.run(|_| {
                n += 1;
                crate::capture::file::Flow::Continue
            })
            .unwrap();
            assert!(n > 0, "{name}");
        }
        assert!(!std::path::Path::new(&Ring::file_name(&base, 3)).exists());
    }
}
