//! Telnet logins. Option negotiation (IAC …, subnegotiation) and ANSI escape
//! sequences are stripped from both directions; the client's keystrokes are
//! edited into lines (backspace/DEL, CR NUL / CR LF / LF), one byte per
//! segment or many; the server's text is watched for prompts. A line typed
//! after a login prompt is the username, after a password prompt the
//! password; the server's next words decide: "incorrect"/"failed"/a new
//! login prompt is `failure`, a shell prompt or a banner is `success`, a
//! close right after the password is `failure`, anything else `unknown`.
//! The prompts and words, localised forms included, are data:
//! `signatures/telnet-prompts.tsv`.

use super::{Analyzer, Dir, FlowAnalyzer, FlowInfo, Output, Probe, Progress};
use crate::capture::Nanos;
use crate::detect::credentials::{Attempt, MAX_FIELD, Outcome, login_event};
use crate::flow::Chunk;
use crate::signatures::credentials::CredentialDb;
use crate::signatures::telnet_prompts;

/// Server text kept for prompt matching.
const TAIL: usize = 256;
/// Subnegotiation bytes skipped before the stream is taken as garbage.
const MAX_SB: usize = 512;
/// Attempts per connection (Mirai makes one; people a few).
const MAX_ATTEMPTS: u8 = 16;

const IAC: u8 = 255;
const SB: u8 = 250;
const SE: u8 = 240;

pub struct Telnet;

impl Analyzer for Telnet {
    fn name(&self) -> &'static str {
        "telnet"
    }
    fn tcp_ports(&self) -> &[u16] {
        &[23, 2323]
    }
    fn probes(&self) -> bool {
        true
    }
    /// Any port: a server or client that opens with IAC negotiation.
    fn probe(&self, _l4: super::L4, _dir: Dir, first: &[u8]) -> Probe {
        match first {
            [IAC, 251..=254, ..] => Probe::Yes,
            [IAC] => Probe::Unsure,
            _ => Probe::No,
        }
    }
    fn start(&self, _flow: &FlowInfo) -> Box<dyn FlowAnalyzer> {
        Box::new(TelnetFlow {
            banner: Some(Vec::new()),
            ..TelnetFlow::default()
        })
    }
}

/// Removes telnet commands and ANSI escapes from a byte stream, across
/// segment boundaries.
#[derive(Default)]
struct Strip {
    state: StripState,
    sb_len: usize,
}

#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum StripState {
    #[default]
    Text,
    Iac,
    Option,
    Sub,
    SubIac,
    Esc,
    Csi,
}

impl Strip {
    fn feed(&mut self, data: &[u8], mut text: impl FnMut(u8)) {
        use StripState::*;
        for &b in data {
            self.state = match (self.state, b) {
                (Text, IAC) => Iac,
                (Text, 0x1b) => Esc,
                (Text, _) => {
                    text(b);
                    Text
                }
                (Iac, IAC) => {
                    text(IAC);
                    Text
                }
                (Iac, 251..=254) => Option,
                (Iac, SB) => {
                    self.sb_len = 0;
                    Sub
                }
                (Iac, _) => Text,
                (Option, _) => Text,
                (Sub, IAC) => SubIac,
                (Sub, _) => {
                    self.sb_len += 1;
                    // An unterminated subnegotiation: give up on it.
                    if self.sb_len > MAX_SB { Text } else { Sub }
                }
                (SubIac, SE) => Text,
                (SubIac, _) => Sub,
                (Esc, b'[') => Csi,
                (Esc, _) => Text,
                (Csi, 0x40..=0x7e) => Text,
                (Csi, _) => Csi,
            };
        }
    }
}

#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum Expect {
    #[default]
    Nothing,
    User,
    Password,
    /// A password was sent: the server's answer decides.
    Verdict,
}

#[derive(Default)]
struct TelnetFlow {
    from_client: Strip,
    from_server: Strip,
    /// Stripped bytes of the current segment, reused across segments.
    scratch: Vec<u8>,
    line: Vec<u8>,
    last_cr: bool,
    tail: String,
    expect: Expect,
    user: Option<Vec<u8>>,
    pass: Option<Vec<u8>>,
    attempts: u8,
    /// Server text before the first prompt (a banner often names the
    /// device), until reported.
    banner: Option<Vec<u8>>,
}

/// Bytes of server text read for the banner.
const BANNER: usize = 256;

/// `text` is the lower-cased tail; the needles are lower case too.
fn ends_with_any<S: AsRef<str>>(text: &str, needles: &[S]) -> bool {
    let t = text.trim_end();
    needles.iter().any(|n| t.ends_with(n.as_ref()))
}

fn contains_any<S: AsRef<str>>(text: &str, needles: &[S]) -> bool {
    needles.iter().any(|n| text.contains(n.as_ref()))
}

impl TelnetFlow {
    fn emit(&mut self, flow: &FlowInfo, ts: Nanos, outcome: Outcome, out: &mut Output) {
        if self.attempts >= MAX_ATTEMPTS {
            return;
        }
        self.attempts += 1;
        let a = Attempt {
            protocol: "telnet",
            username: self.user.as_deref(),
            password: self.pass.as_deref(),
            proven_default: None,
            outcome,
        };
        out.events
            .push(login_event(flow, ts, &a, CredentialDb::builtin()));
        self.pass = None;
        self.expect = Expect::Nothing;
    }

    fn client_line(&mut self) {
        let line = std::mem::take(&mut self.line);
        match self.expect {
            Expect::User => {
                self.user = Some(line);
                self.expect = Expect::Nothing;
            }
            Expect::Password => {
                self.pass = Some(line);
                self.expect = Expect::Verdict;
                self.tail.clear();
            }
            _ => {}
        }
    }

    fn client_byte(&mut self, b: u8) {
        match b {
            b'\r' => {
                self.last_cr = true;
                self.client_line();
                return;
            }
            // LF ends a line unless it follows CR; NUL after CR is padding.
            b'\n' | 0 if self.last_cr => {}
            b'\n' => self.client_line(),
            0x08 | 0x7f => {
                self.line.pop();
            }
            _ if self.line.len() < MAX_FIELD => self.line.push(b),
            _ => {}
        }
        self.last_cr = false;
    }

    /// Collects the text before the first prompt and reports its lines
    /// (the prompt itself left out) as the server's banner.
    fn banner_text(&mut self, flow: &FlowInfo, ts: Nanos, text: &[u8], out: &mut Output) {
        let Some(b) = &mut self.banner else { return };
        b.extend_from_slice(&text[..text.len().min(BANNER.saturating_sub(b.len()))]);
        if self.expect == Expect::Nothing && b.len() < BANNER {
            return;
        }
        let mut lines: Vec<&[u8]> = b
            .split(|&c| c == b'\n')
            .map(|l| l.trim_ascii())
            .filter(|l| !l.is_empty())
            .collect();
        if self.expect != Expect::Nothing {
            lines.pop(); // the prompt
        }
        if !lines.is_empty() {
            let joined = lines.join(&b" | "[..]);
            out.facts
                .add(ts, &flow.server, "telnet", "banner", &joined, false);
        }
        self.banner = None;
    }

    fn server_text(&mut self, flow: &FlowInfo, ts: Nanos, text: &[u8], out: &mut Output) {
        // Kept lower-cased, so prompt matching allocates nothing.
        self.tail.extend(
            String::from_utf8_lossy(text)
                .chars()
                .map(|c| c.to_ascii_lowercase()),
        );
        if self.tail.len() > TAIL {
            let mut cut = self.tail.len() - TAIL;
            while !self.tail.is_char_boundary(cut) {
                cut += 1;
            }
            self.tail.drain(..cut);
        }
        let p = telnet_prompts::builtin();
        if self.expect == Expect::Verdict {
            if contains_any(&self.tail, &p.failure) || ends_with_any(&self.tail, &p.login) {
                self.emit(flow, ts, Outcome::Failure, out);
            } else if contains_any(&self.tail, &p.success)
                || ends_with_any(&self.tail, &["$", "#", ">", "%"])
            {
                self.emit(flow, ts, Outcome::Success, out);
                return;
            } else {
                return;
            }
        }
        if ends_with_any(&self.tail, &p.password) {
            self.expect = Expect::Password;
            self.line.clear();
            self.tail.clear();
        } else if ends_with_any(&self.tail, &p.login) {
            self.expect = Expect::User;
            self.user = None;
            self.line.clear();
            self.tail.clear();
        }
    }
}

impl FlowAnalyzer for TelnetFlow {
    fn data(
        &mut self,
        flow: &FlowInfo,
        dir: Dir,
        ts: Nanos,
        chunk: Chunk<'_>,
        out: &mut Output,
    ) -> Progress {
        let data = match chunk {
            Chunk::Data(d) => d,
            Chunk::Gap(_) => {
                // Lost bytes: whatever was being typed or prompted is unknown.
                if self.expect == Expect::Verdict {
                    self.emit(flow, ts, Outcome::Unknown, out);
                }
                self.expect = Expect::Nothing;
                self.line.clear();
                self.tail.clear();
                return Progress::More;
            }
        };
        match dir {
            Dir::ToServer => {
                let mut bytes = std::mem::take(&mut self.scratch);
                bytes.clear();
                self.from_client.feed(data, |b| bytes.push(b));
                for &b in &bytes {
                    self.client_byte(b);
                }
                self.scratch = bytes;
            }
            Dir::ToClient => {
                let mut text = std::mem::take(&mut self.scratch);
                text.clear();
                self.from_server.feed(data, |b| text.push(b));
                self.server_text(flow, ts, &text, out);
                self.banner_text(flow, ts, &text, out);
                self.scratch = text;
            }
        }
        if self.attempts >= MAX_ATTEMPTS {
            Progress::Done
        } else {
            Progress::More
        }
    }

    fn end(&mut self, flow: &FlowInfo, ts: Nanos, out: &mut Output) {
        if self.expect == Expect::Verdict {
            // Closed with no word after the password: Mirai's sign of a refusal.
            let outcome = if self.tail.trim().is_empty() {
                Outcome::Failure
            } else {
                Outcome::Unknown
            };
            self.emit(flow, ts, outcome, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_negotiation_subnegotiation_and_ansi() {
        let mut s = Strip::default();
        let mut out = Vec::new();
        s.feed(
            b"\xff\xfd\x18\xff\xfa\x18\x01\xff\xf0lo\x1b[6ngin: \xff\xff",
            |b| out.push(b),
        );
        assert_eq!(out, b"login: \xff");
    }

    #[test]
    fn unterminated_subnegotiation_is_bounded() {
        let mut s = Strip::default();
        let mut out = Vec::new();
        let mut data = vec![IAC, SB];
        data.extend(std::iter::repeat_n(b'x', MAX_SB + 10));
        s.feed(&data, |b| out.push(b));
        assert!(out.len() < 20);
    }
}
