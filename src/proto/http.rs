//! HTTP and RTSP logins: `Authorization: Basic` (decoded) and `Digest`
//! (checked by computing the response for each default password the lists
//! hold for that username, so a default is recognised though the password
//! never crosses the wire), with the outcome from the response status:
//! 2xx/3xx success, 401/403 failure. Requests and responses are paired in
//! order, as HTTP/1.x and RTSP pipelines them.

use std::collections::VecDeque;

use base64::Engine;
use md5::Md5;
use sha2::Sha256;

use super::lines::LineStreams;
use super::{Analyzer, Dir, FlowAnalyzer, FlowInfo, L4, Output, Probe, Progress};
use crate::capture::Nanos;
use crate::detect::credentials::{Attempt, Outcome, login_event};
use crate::flow::Chunk;
use crate::signatures::credentials::CredentialDb;
use crate::signatures::scanner_tools;

/// Requests remembered while waiting for their responses.
const MAX_PENDING: usize = 16;
/// Exchanges followed before a flow with no `Authorization` and no 401 is
/// left alone: clients authenticate on their first request or right after a
/// challenge, and ordinary browsing should cost nothing more.
const EXCHANGES_WITHOUT_AUTH: u32 = 2;

const HTTP_METHODS: &[&[u8]] = &[
    b"GET ",
    b"POST ",
    b"PUT ",
    b"HEAD ",
    b"DELETE ",
    b"OPTIONS ",
    b"PATCH ",
];
const RTSP_METHODS: &[&[u8]] = &[
    b"OPTIONS ",
    b"DESCRIBE ",
    b"SETUP ",
    b"PLAY ",
    b"PAUSE ",
    b"TEARDOWN ",
    b"GET_PARAMETER ",
    b"SET_PARAMETER ",
    b"ANNOUNCE ",
    b"RECORD ",
];

pub struct Http;

impl Analyzer for Http {
    fn name(&self) -> &'static str {
        "http"
    }
    fn tcp_ports(&self) -> &[u16] {
        &[80, 81, 88, 8000, 8008, 8080, 8081, 8888, 554, 8554]
    }
    fn probes(&self) -> bool {
        true
    }
    /// Any port: a client whose first bytes are a request line.
    fn probe(&self, l4: L4, dir: Dir, first: &[u8]) -> Probe {
        if l4 != L4::Tcp {
            return Probe::No;
        }
        // A capture that starts with a response, or a connection that first
        // asks a SOCKS proxy for its target (v4 CONNECT and its reply, v5
        // greeting, request and replies): the request comes next.
        let socks =
            matches!(first, [4, 1, ..] | [5, _, ..] | [0, 0x5a..=0x5d, ..]) && first.len() < 300;
        if (dir == Dir::ToClient && first.starts_with(b"HTTP/1.")) || socks {
            return Probe::Unsure;
        }
        if dir != Dir::ToServer {
            return Probe::No;
        }
        let starts = |m: &[u8]| first.len() >= m.len() && first[..m.len()] == *m;
        if HTTP_METHODS.iter().chain(RTSP_METHODS).any(|m| starts(m)) {
            Probe::Yes
        } else if first.len() < 8 && first.iter().all(u8::is_ascii_uppercase) {
            Probe::Unsure
        } else {
            Probe::No
        }
    }
    fn start(&self, _flow: &FlowInfo) -> Box<dyn FlowAnalyzer> {
        Box::<HttpFlow>::default()
    }
}

#[derive(Default)]
struct Request {
    rtsp: bool,
    /// One of the methods followed, as it appears in the request line.
    method: &'static [u8],
    auth: Option<Vec<u8>>,
}

#[derive(Default)]
struct HttpFlow {
    lines: LineStreams,
    pending: VecDeque<Request>,
    exchanges: u32,
    auth_seen: bool,
    /// The response being read has an XML body (a UPnP description).
    xml_body: bool,
}

impl FlowAnalyzer for HttpFlow {
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
                let pending = &mut self.pending;
                let mut tool = None;
                let facts = &mut out.facts;
                self.lines.feed(dir, chunk, |line| {
                    request_line(pending, line);
                    if let Some(ua) = header(line, b"user-agent:") {
                        tool = tool.or(scanner_tools::by_user_agent(ua));
                        let signal = signal(pending.back().is_some_and(|r| r.rtsp));
                        facts.add(ts, &flow.client, signal, "user_agent", ua, false);
                    }
                });
                if let Some(t) = tool {
                    out.tools.push((ts, flow.client, t.tool.as_str()));
                }
            }
            Dir::ToClient => {
                let mut statuses = Vec::new();
                let facts = &mut out.facts;
                let signal = signal(self.pending.front().is_some_and(|r| r.rtsp));
                let xml = &mut self.xml_body;
                self.lines.feed(dir, chunk, |line| {
                    if let Some(code) = status(line) {
                        statuses.push(code);
                        *xml = false;
                    }
                    response_facts(line, signal, ts, &flow.server, xml, facts);
                });
                for code in statuses {
                    if (100..200).contains(&code) {
                        continue; // not final
                    }
                    self.exchanges += 1;
                    let Some(req) = self.pending.pop_front() else {
                        continue;
                    };
                    let outcome = match code {
                        200..=399 => Outcome::Success,
                        401 | 403 => Outcome::Failure,
                        _ => Outcome::Unknown,
                    };
                    if let Some(auth) = &req.auth {
                        login(flow, ts, &req, auth, outcome, out);
                    }
                }
                if self.exchanges >= EXCHANGES_WITHOUT_AUTH
                    && !self.auth_seen
                    && self.pending.is_empty()
                {
                    return Progress::Done;
                }
            }
        }
        Progress::More
    }

    fn end(&mut self, flow: &FlowInfo, ts: Nanos, out: &mut Output) {
        for req in self.pending.drain(..) {
            if let Some(auth) = &req.auth {
                login(flow, ts, &req, auth, Outcome::Unknown, out);
            }
        }
    }
}

fn request_line(pending: &mut VecDeque<Request>, line: &[u8]) {
    // The method the line starts with (each is listed with the space after
    // it), if the line is a request of that protocol.
    let request = |methods: &'static [&'static [u8]], version: &[u8]| {
        methods
            .iter()
            .find(|m| line.starts_with(m))
            .filter(|_| line.windows(version.len()).any(|w| w == version))
            .map(|m| m.trim_ascii_end())
    };
    let rtsp = request(RTSP_METHODS, b" RTSP/1.");
    if let Some(method) = rtsp.or_else(|| request(HTTP_METHODS, b" HTTP/1.")) {
        if pending.len() >= MAX_PENDING {
            pending.pop_front();
        }
        let rtsp = rtsp.is_some();
        pending.push_back(Request {
            rtsp,
            method,
            auth: None,
        });
        return;
    }
    const AUTH: &[u8] = b"authorization:";
    if line.len() > AUTH.len()
        && line[..AUTH.len()].eq_ignore_ascii_case(AUTH)
        && let Some(req) = pending.back_mut()
    {
        req.auth = Some(line[AUTH.len()..].trim_ascii().to_vec());
    }
}

fn signal(rtsp: bool) -> &'static str {
    if rtsp { "rtsp" } else { "http" }
}

/// The value of a header line named `name` (given in lower case, with its colon).
fn header<'a>(line: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    (line.len() > name.len() && line[..name.len()].eq_ignore_ascii_case(name))
        .then(|| line[name.len()..].trim_ascii())
        .filter(|v| !v.is_empty())
}

/// UPnP device description elements worth keeping (UPnP Device Architecture
/// 2.0, section 2.3), by the evidence field they go to.
/// (opening tag, closing tag, field): written out, so no tag is formatted per line.
const UPNP_TAGS: &[(&str, &str, &str)] = &[
    ("<manufacturer>", "</manufacturer>", "manufacturer"),
    ("<modelName>", "</modelName>", "model_name"),
    ("<modelNumber>", "</modelNumber>", "model_number"),
    (
        "<modelDescription>",
        "</modelDescription>",
        "model_description",
    ),
    ("<friendlyName>", "</friendlyName>", "friendly_name"),
    ("<deviceType>", "</deviceType>", "device_type"),
    ("<firmwareVersion>", "</firmwareVersion>", "firmware"),
    ("<softwareVersion>", "</softwareVersion>", "firmware"),
];

/// Facts a response line shows about the server: its `Server` header, the
/// realm it asks credentials for, and UPnP description elements (the body
/// is read as lines, so an element split over two lines is missed).
fn response_facts(
    line: &[u8],
    signal: &'static str,
    ts: Nanos,
    server: &super::Endpoint,
    xml: &mut bool,
    facts: &mut super::Facts,
) {
    if let Some(v) = header(line, b"server:") {
        facts.add(ts, server, signal, "server", v, false);
    } else if let Some(v) = header(line, b"www-authenticate:") {
        let p = DigestParams::parse(v.splitn(2, |&b| b == b' ').nth(1).unwrap_or_default());
        if let Some(realm) = p.get("realm") {
            facts.add(ts, server, signal, "realm", realm, false);
        }
    } else if let Some(v) = header(line, b"content-type:") {
        *xml = memchr::memmem::find(v, b"xml").is_some();
    } else if *xml && memchr::memchr(b'<', line).is_some() {
        for (open, close, field) in UPNP_TAGS {
            if let Some(v) = element(line, open, close) {
                facts.add(ts, server, "upnp", field, v, false);
            }
        }
    }
}

/// The text between `open` and `close` tags within one line.
fn element<'a>(line: &'a [u8], open: &str, close: &str) -> Option<&'a [u8]> {
    let at = memchr::memmem::find(line, open.as_bytes())? + open.len();
    let rest = &line[at..];
    let end = memchr::memmem::find(rest, close.as_bytes())?;
    Some(rest[..end].trim_ascii()).filter(|v| !v.is_empty())
}

fn status(line: &[u8]) -> Option<u16> {
    let rest = line
        .strip_prefix(b"HTTP/1.1 ")
        .or_else(|| line.strip_prefix(b"HTTP/1.0 "))
        .or_else(|| line.strip_prefix(b"RTSP/1.0 "))?;
    let code = rest.get(..3)?;
    std::str::from_utf8(code).ok()?.parse().ok()
}

fn login(
    flow: &FlowInfo,
    ts: Nanos,
    req: &Request,
    auth: &[u8],
    outcome: Outcome,
    out: &mut Output,
) {
    let db = CredentialDb::builtin();
    let (scheme, value) = match auth.iter().position(|&b| b == b' ') {
        Some(i) => (&auth[..i], auth[i + 1..].trim_ascii()),
        None => (auth, &[][..]),
    };
    if scheme.eq_ignore_ascii_case(b"basic") {
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(value) else {
            return;
        };
        let (user, pass) = match decoded.iter().position(|&b| b == b':') {
            Some(i) => (&decoded[..i], &decoded[i + 1..]),
            None => (&decoded[..], &[][..]),
        };
        let protocol = if req.rtsp { "rtsp-basic" } else { "http-basic" };
        let a = Attempt {
            protocol,
            username: Some(user),
            password: Some(pass),
            proven_default: None,
            outcome,
        };
        out.events.push(login_event(flow, ts, &a, db));
    } else if scheme.eq_ignore_ascii_case(b"digest") {
        let p = DigestParams::parse(value);
        let protocol = if req.rtsp {
            "rtsp-digest"
        } else {
            "http-digest"
        };
        let user = p.get("username").unwrap_or_default();
        let user_s = String::from_utf8_lossy(user);
        let proven = db
            .passwords_for(protocol, &user_s)
            .find(|c| p.matches(req.method, c.password.as_bytes()))
            .map(|c| (c.username.as_str(), c.password.as_str()));
        let a = Attempt {
            protocol,
            username: Some(user),
            password: None,
            proven_default: proven,
            outcome,
        };
        out.events.push(login_event(flow, ts, &a, db));
    }
}

/// The fields of a Digest `Authorization` header (RFC 7616).
#[derive(Default)]
pub struct DigestParams<'a> {
    fields: Vec<(&'a [u8], &'a [u8])>,
}

impl<'a> DigestParams<'a> {
    pub fn parse(mut s: &'a [u8]) -> DigestParams<'a> {
        let mut fields = Vec::new();
        while fields.len() < 32 {
            s = s.trim_ascii_start();
            let Some(eq) = s.iter().position(|&b| b == b'=') else {
                break;
            };
            let key = s[..eq].trim_ascii();
            s = &s[eq + 1..];
            let value;
            if s.first() == Some(&b'"') {
                let end = s[1..]
                    .iter()
                    .position(|&b| b == b'"')
                    .map_or(s.len(), |i| i + 1);
                value = &s[1..end.max(1)];
                s = s.get(end + 1..).unwrap_or_default();
            } else {
                let end = s.iter().position(|&b| b == b',').unwrap_or(s.len());
                value = s[..end].trim_ascii();
                s = &s[end..];
            }
            s = s.strip_prefix(b",").unwrap_or(s);
            // A duplicated field: the first one counts.
            if !fields
                .iter()
                .any(|(k, _): &(&[u8], &[u8])| k.eq_ignore_ascii_case(key))
            {
                fields.push((key, value));
            }
        }
        DigestParams { fields }
    }

    pub fn get(&self, key: &str) -> Option<&'a [u8]> {
        self.fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key.as_bytes()))
            .map(|(_, v)| *v)
    }

    /// Whether `password` gives this header's response (MD5, MD5-sess,
    /// SHA-256 and SHA-256-sess; qop `auth` or none).
    pub fn matches(&self, method: &[u8], password: &[u8]) -> bool {
        let (Some(user), Some(realm), Some(nonce), Some(uri), Some(resp)) = (
            self.get("username"),
            self.get("realm"),
            self.get("nonce"),
            self.get("uri"),
            self.get("response"),
        ) else {
            return false;
        };
        let algorithm = self.get("algorithm").unwrap_or(b"MD5").to_ascii_uppercase();
        let (sha256, sess) = match algorithm.as_slice() {
            b"MD5" => (false, false),
            b"MD5-SESS" => (false, true),
            b"SHA-256" => (true, false),
            b"SHA-256-SESS" => (true, true),
            _ => return false,
        };
        let h = |parts: &[&[u8]]| -> String {
            if sha256 {
                hash::<Sha256>(parts)
            } else {
                hash::<Md5>(parts)
            }
        };
        let cnonce = self.get("cnonce").unwrap_or_default();
        let mut ha1 = h(&[user, b":", realm, b":", password]);
        if sess {
            ha1 = h(&[ha1.as_bytes(), b":", nonce, b":", cnonce]);
        }
        let ha2 = h(&[method, b":", uri]);
        let expected = match self.get("qop") {
            Some(q) if q.eq_ignore_ascii_case(b"auth") => {
                let nc = self.get("nc").unwrap_or_default();
                h(&[
                    ha1.as_bytes(),
                    b":",
                    nonce,
                    b":",
                    nc,
                    b":",
                    cnonce,
                    b":",
                    q,
                    b":",
                    ha2.as_bytes(),
                ])
            }
            Some(_) => return false, // auth-int needs the body
            None => h(&[ha1.as_bytes(), b":", nonce, b":", ha2.as_bytes()]),
        };
        expected.as_bytes().eq_ignore_ascii_case(resp)
    }
}

fn hash<D: sha2::Digest>(parts: &[&[u8]]) -> String {
    let mut d = D::new();
    for p in parts {
        d.update(p);
    }
    super::hex(&d.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_rfc2617_example() {
        // RFC 2617 section 3.5: Mufasa / "Circle Of Life".
        let h = br#"username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", qop=auth, nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41""#;
        let p = DigestParams::parse(h);
        assert!(p.matches(b"GET", b"Circle Of Life"));
        assert!(!p.matches(b"GET", b"admin"));
    }

    #[test]
    fn digest_with_missing_or_duplicated_fields_does_not_match_or_panic() {
        let p = DigestParams::parse(br#"username="a", username="b", realm=, nonce"#);
        assert_eq!(p.get("username"), Some(&b"a"[..]));
        assert!(!p.matches(b"GET", b"x"));
        let _ = DigestParams::parse(b"\"\"\"=,,==\"");
    }
}
