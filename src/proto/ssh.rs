//! SSH version strings (`SSH-2.0-dropbear_2019.78`, `SSH-2.0-OpenSSH_7.4p1
//! Raspbian-10+deb9u7`): each side announces its software, and often its
//! OS build, in clear before encryption starts.

use super::lines::Lines;
use super::{Analyzer, Dir, FlowAnalyzer, FlowInfo, L4, Output, Probe, Progress};
use crate::capture::Nanos;
use crate::flow::Chunk;

pub struct Ssh;

impl Analyzer for Ssh {
    fn name(&self) -> &'static str {
        "ssh"
    }
    fn tcp_ports(&self) -> &[u16] {
        &[22, 2222]
    }
    fn probes(&self) -> bool {
        true
    }
    fn probe(&self, l4: L4, _dir: Dir, first: &[u8]) -> Probe {
        match (l4, first.get(..4)) {
            (L4::Tcp, Some(b"SSH-")) => Probe::Yes,
            (L4::Tcp, None) if b"SSH-".starts_with(first) => Probe::Unsure,
            _ => Probe::No,
        }
    }
    fn start(&self, _flow: &FlowInfo) -> Box<dyn FlowAnalyzer> {
        Box::<SshFlow>::default()
    }
}

#[derive(Default)]
struct SshFlow {
    lines: [Lines; 2],
    done: [bool; 2],
}

impl FlowAnalyzer for SshFlow {
    fn data(
        &mut self,
        flow: &FlowInfo,
        dir: Dir,
        ts: Nanos,
        chunk: Chunk<'_>,
        out: &mut Output,
    ) -> Progress {
        let i = usize::from(dir == Dir::ToClient);
        let Chunk::Data(d) = chunk else {
            self.done[i] = true;
            return Progress::More;
        };
        if !self.done[i] {
            let done = &mut self.done[i];
            let sender = flow.sender(dir);
            // A server may send other lines before its version (RFC 4253 4.2).
            self.lines[i].feed(d, |line| {
                if !*done && line.starts_with(b"SSH-") {
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    out.facts.add(ts, sender, "ssh", "version", line, false);
                    *done = true;
                }
            });
        }
        if self.done.iter().all(|d| *d) {
            Progress::Done
        } else {
            Progress::More
        }
    }
}
