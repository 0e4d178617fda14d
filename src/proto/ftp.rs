//! FTP logins: USER/PASS from the client, 230 (logged in), 530 (refused),
//! 331 (need password) from the server; several attempts per connection.

use super::lines::LineStreams;
use super::{Analyzer, Dir, FlowAnalyzer, FlowInfo, Output, Progress};
use crate::capture::Nanos;
use crate::detect::credentials::{Attempt, MAX_FIELD, Outcome, login_event};
use crate::flow::Chunk;
use crate::signatures::credentials::CredentialDb;

pub struct Ftp;

impl Analyzer for Ftp {
    fn name(&self) -> &'static str {
        "ftp"
    }
    fn tcp_ports(&self) -> &[u16] {
        &[21]
    }
    fn start(&self, _flow: &FlowInfo) -> Box<dyn FlowAnalyzer> {
        Box::<FtpFlow>::default()
    }
}

#[derive(Default)]
struct FtpFlow {
    lines: LineStreams,
    user: Option<Vec<u8>>,
    pass: Option<Vec<u8>>,
    /// A login is waiting for the server's verdict.
    pending: bool,
    greeted: bool,
}

/// The argument of `CMD arg`, if the line is that command (case-insensitive).
fn arg<'a>(line: &'a [u8], cmd: &[u8]) -> Option<&'a [u8]> {
    if line.len() >= cmd.len() && line[..cmd.len()].eq_ignore_ascii_case(cmd) {
        let rest = &line[cmd.len()..];
        match rest.first() {
            None => Some(&[]),
            Some(b' ') => Some(&rest[1..rest.len().min(1 + MAX_FIELD)]),
            _ => None,
        }
    } else {
        None
    }
}

impl FtpFlow {
    fn emit(&mut self, flow: &FlowInfo, ts: Nanos, outcome: Outcome, out: &mut Output) {
        let attempt = Attempt {
            protocol: "ftp",
            username: self.user.as_deref(),
            password: self.pass.as_deref(),
            proven_default: None,
            outcome,
        };
        out.events
            .push(login_event(flow, ts, &attempt, CredentialDb::builtin()));
        self.pass = None;
        self.pending = false;
    }
}

impl FlowAnalyzer for FtpFlow {
    fn data(
        &mut self,
        flow: &FlowInfo,
        dir: Dir,
        ts: Nanos,
        chunk: Chunk<'_>,
        out: &mut Output,
    ) -> Progress {
        match dir {
            Dir::ToServer => {
                let (user, pass, pending) = (&mut self.user, &mut self.pass, &mut self.pending);
                self.lines.feed(dir, chunk, |line| {
                    if let Some(u) = arg(line, b"USER") {
                        *user = Some(u.to_vec());
                        *pass = None;
                    } else if let Some(p) = arg(line, b"PASS") {
                        *pass = Some(p.to_vec());
                        *pending = true;
                    }
                });
            }
            Dir::ToClient => {
                let mut codes = Vec::new();
                let greeted = &mut self.greeted;
                self.lines.feed(dir, chunk, |line| {
                    // The 220 greeting often names the device and its software.
                    if !*greeted && line.starts_with(b"220") {
                        *greeted = true;
                        let text = line.get(4..).unwrap_or_default();
                        out.facts
                            .add(ts, &flow.server, "ftp", "banner", text, false);
                    }
                    if line.len() >= 3
                        && line[..3].iter().all(u8::is_ascii_digit)
                        && line.get(3) != Some(&b'-')
                    {
                        codes.push([line[0], line[1], line[2]]);
                    }
                });
                for code in codes {
                    match &code {
                        // Logged in, with a password or (230 right after USER) without one.
                        b"230" if self.pending || self.user.is_some() => {
                            self.emit(flow, ts, Outcome::Success, out)
                        }
                        b"530" if self.pending || self.user.is_some() => {
                            self.emit(flow, ts, Outcome::Failure, out)
                        }
                        _ => {}
                    }
                    if &code == b"230" || &code == b"530" {
                        self.user = None;
                    }
                }
            }
        }
        Progress::More
    }

    fn end(&mut self, flow: &FlowInfo, ts: Nanos, out: &mut Output) {
        if self.pending {
            self.emit(flow, ts, Outcome::Unknown, out);
        }
    }
}
