//! Several capture files read as one timeline.
//!
//! One file is read in place. With several, each file's next frame is copied
//! into a slot (buffers reused, so no allocation once warm) and the earliest
//! slot is handed on, as mergecap does; ties go to the file named first.

use std::sync::Arc;

use super::file::{CaptureError, CaptureFile, Flow, RunEnd};
use super::{Frame, LinkType, Nanos, SharedMap};

pub struct Timeline {
    files: Vec<CaptureFile>,
}

struct Slot {
    ts: Nanos,
    link: LinkType,
    orig_len: u32,
    data: Vec<u8>,
    full: bool,
}

impl Timeline {
    /// Opens every file before reading any, so a bad name fails at once.
    pub fn open(paths: &[String]) -> Result<Timeline, CaptureError> {
        let files = paths
            .iter()
            .map(|p| CaptureFile::open(p))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Timeline { files })
    }

    pub fn from_files(files: Vec<CaptureFile>) -> Timeline {
        Timeline { files }
    }

    pub fn files(&self) -> &[CaptureFile] {
        &self.files
    }

    /// The memory map every frame's bytes lie in: a single file read in place
    /// (several files are merged through copies).
    pub fn mapping(&self) -> Option<&Arc<SharedMap>> {
        match self.files.as_slice() {
            [only] => only.mapping(),
            _ => None,
        }
    }

    /// Hands every frame of every file to `f` in timestamp order.
    pub fn run(&mut self, mut f: impl FnMut(Frame<'_>)) -> Result<(), CaptureError> {
        if let [only] = self.files.as_mut_slice() {
            only.run(|fr| {
                f(fr);
                Flow::Continue
            })?;
            return Ok(());
        }
        let mut slots: Vec<Slot> = self
            .files
            .iter()
            .map(|_| Slot {
                ts: 0,
                link: LinkType::Ethernet,
                orig_len: 0,
                data: Vec::new(),
                full: false,
            })
            .collect();
        for (file, slot) in self.files.iter_mut().zip(slots.iter_mut()) {
            fill(file, slot)?;
        }
        loop {
            let next = slots
                .iter()
                .enumerate()
                .filter(|(_, s)| s.full)
                .min_by_key(|(i, s)| (s.ts, *i))
                .map(|(i, _)| i);
            let Some(i) = next else { break };
            let s = &slots[i];
            f(Frame {
                ts: s.ts,
                link: s.link,
                data: &s.data,
                orig_len: s.orig_len,
            });
            fill(&mut self.files[i], &mut slots[i])?;
        }
        Ok(())
    }
}

fn fill(file: &mut CaptureFile, slot: &mut Slot) -> Result<(), CaptureError> {
    slot.full = false;
    let end = file.run(|fr| {
        slot.ts = fr.ts;
        slot.link = fr.link;
        slot.orig_len = fr.orig_len;
        slot.data.clear();
        slot.data.extend_from_slice(fr.data);
        slot.full = true;
        Flow::Pause
    })?;
    debug_assert!(end == RunEnd::Finished || slot.full);
    Ok(())
}
