//! Real scanners against real hosts, in two network namespaces this test
//! creates and removes (a veth pair, nothing routed anywhere else): traffic
//! is recorded with tcpdump and the capture checked through `analyze`.
//! Skips with a message when not root or when nmap, hping3 or tcpdump are
//! missing (CI runs as root and installs them).

mod common;

use std::process::Command;
use std::thread::sleep;
use std::time::Duration;

use common::netns::{Netns, busybox_telnetd, ready, sh, telnet_logins};
use common::{analyze, bruteforces, logins, scans};
use iotwatch::detect::credentials::Outcome;

/// Records on the target side while `scan` runs on the scanner side.
fn record(ns: &Netns, pcap: &std::path::Path, scan: impl FnOnce(&Netns)) {
    let n = std::process::id() % 200 + 20;
    let mut dump = ns.spawn(
        &ns.target,
        &format!("tcpdump -U -n -i iwb{n} -w {}", pcap.display()),
    );
    // A listener on 23 and 80 so some probes are answered.
    let mut listen = ns.spawn(
        &ns.target,
        "python3 -c 'import socket,time\nss=[]\nfor p in (23,80):\n s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);s.bind((\"0.0.0.0\",p));s.listen(64);ss.append(s)\ntime.sleep(30)'",
    );
    sleep(Duration::from_millis(1500));
    scan(ns);
    sleep(Duration::from_millis(1000));
    let _ = Command::new("kill")
        .arg("-INT")
        .arg(dump.id().to_string())
        .status();
    let _ = dump.wait();
    let _ = listen.kill();
    let _ = listen.wait();
}

#[test]
fn nmap_syn_scan_and_hping3_mirai_probes() {
    if !ready(&["ip", "nmap", "hping3", "tcpdump", "python3"]) {
        return;
    }
    let Some(ns) = Netns::new("scan") else {
        eprintln!("SKIPPED: could not create network namespaces here");
        return;
    };
    let net = ns.net();
    let tmp = tempfile::tempdir().unwrap();

    // nmap -sS of 200 ports on one host of our own namespace.
    let nmap_pcap = tmp.path().join("nmap.pcap");
    record(&ns, &nmap_pcap, |ns| {
        assert!(ns.exec(
            &ns.scanner,
            &format!("nmap -sS -n -Pn -p 1-200 --max-retries 0 {net}.2")
        ));
    });
    let r = analyze(&[&nmap_pcap], 1).unwrap();
    let found = scans(&r);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].source.ip, format!("{net}.1"));
    assert_eq!((found[0].verdict, found[0].direction), ("scanner", "lan"));
    assert!(found[0].distinct_ports >= 200);
    let open: Vec<&str> = found[0].open.iter().map(String::as_str).collect();
    assert_eq!(open, [format!("{net}.2:23"), format!("{net}.2:80")]);

    // hping3 SYNs whose sequence number is the target's address, Mirai's
    // trick, to three hosts; and the same with a wrong sequence number from
    // a second run, which must not count.
    let mirai_pcap = tmp.path().join("mirai.pcap");
    record(&ns, &mirai_pcap, |ns| {
        for h in 3..=5u32 {
            let dst = format!("{net}.{h}");
            let ip: std::net::Ipv4Addr = dst.parse().unwrap();
            let seq = u32::from(ip);
            for port in [23, 2323] {
                assert!(ns.exec(
                    &ns.scanner,
                    &format!("hping3 -q -S -c 1 -p {port} -M {seq} {dst}")
                ));
            }
        }
    });
    let r = analyze(&[&mirai_pcap], 1).unwrap();
    let found = scans(&r);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].verdict, "mirai-like");
    assert_eq!(found[0].mirai_matches, 6);
}

/// A Mirai-style brute force against a real busybox telnetd whose root
/// password is a factory default (Mirai's root/xc3511): five wrong pairs from
/// Mirai's list, then the right one. `login` reads its own passwd and shadow
/// files, bind-mounted in a private mount namespace, so the machine's
/// accounts are not touched.
#[test]
fn mirai_brute_force_against_busybox_telnetd() {
    let r = match record_telnet() {
        Some(r) => r,
        None => match replay("telnet") {
            Some(r) => r,
            None => return,
        },
    };
    check_telnet(&r);
}

/// Records the brute force live; `None` when this machine cannot.
fn record_telnet() -> Option<iotwatch::output::Report> {
    if !ready(&["ip", "tcpdump", "unshare", "python3", "openssl"]) {
        return None;
    }
    let ns = Netns::new("tel")?;
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    // Five wrong pairs from Mirai's dictionary, then the device's default.
    let pcap = d.join("telnet.pcap");
    let n = std::process::id() % 200 + 20;
    let mut telnetd = busybox_telnetd(&ns, d, "xc3511")?;
    let mut dump = ns.spawn(
        &ns.target,
        &format!("tcpdump -U -n -i iwb{n} -w {}", pcap.display()),
    );
    sleep(Duration::from_millis(1500));
    assert!(
        telnet_logins(
            &ns,
            &[
                ("root", "vizxv"),
                ("admin", "admin"),
                ("root", "888888"),
                ("support", "support"),
                ("root", "default"),
                ("root", "xc3511"),
            ]
        ),
        "client ran"
    );
    sleep(Duration::from_millis(1000));
    let _ = Command::new("kill")
        .arg("-INT")
        .arg(dump.id().to_string())
        .status();
    let _ = dump.wait();
    let _ = telnetd.kill();
    let _ = telnetd.wait();
    sh(&format!("ip netns pids {} | xargs -r kill", ns.target));

    keep("telnet", &pcap);
    Some(analyze(&[&pcap], 1).unwrap())
}

fn check_telnet(r: &iotwatch::output::Report) {
    let logins = logins(r);
    let summary: Vec<String> = logins
        .iter()
        .map(|l| format!("{:?} {:?} {:?}", l.username, l.password, l.outcome))
        .collect();
    assert_eq!(logins.len(), 6, "{summary:#?}");
    assert!(
        logins
            .iter()
            .all(|l| l.default_credential && l.credential_source.as_deref() == Some("mirai"))
    );
    let ok: Vec<_> = logins
        .iter()
        .filter(|l| l.outcome == Outcome::Success)
        .collect();
    assert_eq!(ok.len(), 1, "{summary:#?}");
    assert_eq!(ok[0].password.as_deref(), Some("xc3511"));
    assert_eq!(
        logins
            .iter()
            .filter(|l| l.outcome == Outcome::Failure)
            .count(),
        5,
        "{summary:#?}"
    );
    let brute = bruteforces(r);
    assert_eq!(brute.len(), 1);
    assert_eq!(
        (brute[0].attempts, brute[0].failures, brute[0].successes),
        (6, 5, 1)
    );
    assert_eq!(
        (brute[0].targets, brute[0].default_credentials_tried),
        (1, 6)
    );
}

/// Runs `server` in the target namespace and each of `clients` in the
/// scanner namespace, records the traffic, and analyses it.
/// Where a server test's capture is kept, for runs that cannot record.
fn recorded(tag: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/data/servers/{tag}.pcap"))
}

/// The committed capture of an earlier live run, when this run cannot record
/// (not root, a tool missing): the same checks then run on it.
fn replay(tag: &str) -> Option<iotwatch::output::Report> {
    let p = recorded(tag);
    if !p.exists() {
        eprintln!("SKIPPED: cannot record here and {} is absent", p.display());
        return None;
    }
    eprintln!("replaying {}", p.display());
    Some(analyze(&[&p], 1).unwrap())
}

/// With IOTWATCH_SAVE_CAPTURES=1 (scripts/record-server-captures.sh), a live
/// run refreshes the committed capture.
fn keep(tag: &str, pcap: &std::path::Path) {
    if std::env::var_os("IOTWATCH_SAVE_CAPTURES").is_some() {
        let to = recorded(tag);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(pcap, &to).unwrap();
    }
}

fn record_servers(
    tag: &str,
    live: bool,
    server: &str,
    clients: &[String],
) -> Option<iotwatch::output::Report> {
    if !live {
        return replay(tag);
    }
    let Some(ns) = Netns::new(tag) else {
        return replay(tag);
    };
    let tmp = tempfile::tempdir().unwrap();
    let pcap = tmp.path().join("capture.pcap");
    let n = std::process::id() % 200 + 20;
    let mut dump = ns.spawn(
        &ns.target,
        &format!("tcpdump -U -n -i iwb{n} -w {}", pcap.display()),
    );
    let mut srv = ns.spawn(&ns.target, server);
    sleep(Duration::from_millis(1500));
    for c in clients {
        // A refused login makes some clients exit non-zero: that is the point.
        ns.exec(&ns.scanner, c);
    }
    sleep(Duration::from_millis(1000));
    let _ = Command::new("kill")
        .arg("-INT")
        .arg(dump.id().to_string())
        .status();
    let _ = dump.wait();
    let _ = srv.kill();
    let _ = srv.wait();
    sh(&format!("ip netns pids {} | xargs -r kill", ns.target));
    keep(tag, &pcap);
    Some(analyze(&[&pcap], 1).unwrap())
}

/// The device has this evidence item.
fn has_evidence(
    d: &iotwatch::output::report::DeviceReport,
    signal: &str,
    field: &str,
    value: &str,
) -> bool {
    d.evidence
        .iter()
        .any(|e| e.signal == signal && e.field == field && e.value == value)
}

/// (protocol, username, password shown, outcome, default credential)
type LoginRow = (String, Option<String>, Option<String>, Outcome, bool);

fn login_summary(r: &iotwatch::output::Report) -> Vec<LoginRow> {
    logins(r)
        .iter()
        .map(|l| {
            (
                l.protocol.to_string(),
                l.username.clone(),
                l.password.clone(),
                l.outcome,
                l.default_credential,
            )
        })
        .collect()
}

/// mosquitto with a password file: a default pair, a wrong password, and a
/// user's own password (never shown).
#[test]
fn mosquitto_logins() {
    let live = ready(&[
        "ip",
        "tcpdump",
        "mosquitto",
        "mosquitto_pub",
        "mosquitto_passwd",
    ]);
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let pw = d.join("passwd");
    std::fs::write(&pw, "").unwrap();
    if live {
        assert!(sh(&format!(
            "mosquitto_passwd -b {} admin admin",
            pw.display()
        )));
        assert!(sh(&format!(
            "mosquitto_passwd -b {} alice own-secret-77",
            pw.display()
        )));
    }
    let conf = d.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "user root\nlistener 1883 0.0.0.0\nallow_anonymous false\npassword_file {}\n",
            pw.display()
        ),
    )
    .unwrap();
    let net = format!("10.231.{}", std::process::id() % 200 + 20);
    let publish = |u: &str, p: &str| {
        format!("mosquitto_pub -h {net}.2 -p 1883 -u {u} -P {p} -t t -m hello -q 0")
    };
    let Some(r) = record_servers(
        "mqtt",
        live,
        &format!("mosquitto -c {}", conf.display()),
        &[
            publish("admin", "admin"),
            publish("admin", "wrong-pass"),
            publish("alice", "own-secret-77"),
        ],
    ) else {
        return;
    };
    let s = login_summary(&r);
    let admin = |p: Option<&str>, o: Outcome, d: bool| {
        (
            "mqtt".to_string(),
            Some("admin".to_string()),
            p.map(str::to_string),
            o,
            d,
        )
    };
    assert_eq!(
        s,
        vec![
            admin(Some("admin"), Outcome::Success, true),
            admin(None, Outcome::Failure, false),
            (
                "mqtt".into(),
                Some("alice".into()),
                None,
                Outcome::Success,
                false
            ),
        ],
        "{s:#?}"
    );
    assert!(!serde_json::to_string(&r).unwrap().contains("own-secret-77"));
}

/// A web server with Basic and Digest (MD5, qop=auth) and curl as the
/// client: a Digest login with a default password is recognised from the
/// response hash alone.
#[test]
fn http_basic_and_digest_with_curl() {
    let live = ready(&["ip", "tcpdump", "curl", "python3"]);
    let server = r##"python3 - <<'PY'
import base64, hashlib, http.server, re
USERS = {"admin": "admin", "alice": "own-secret-77"}
REALM, NONCE = "IPCamera", "5f2b1c0a9e"
def md5(s): return hashlib.md5(s.encode()).hexdigest()
class H(http.server.BaseHTTPRequestHandler):
    def deny(self, scheme):
        self.send_response(401)
        if scheme == "Basic":
            self.send_header("WWW-Authenticate", 'Basic realm="%s"' % REALM)
        else:
            self.send_header("WWW-Authenticate", 'Digest realm="%s", nonce="%s", qop="auth", algorithm=MD5' % (REALM, NONCE))
        self.send_header("Content-Length", "0"); self.end_headers()
    def ok(self):
        self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers(); self.wfile.write(b"ok")
    def do_GET(self):
        a = self.headers.get("Authorization", "")
        if self.path.startswith("/basic"):
            if a.startswith("Basic "):
                u, _, p = base64.b64decode(a[6:]).decode().partition(":")
                if USERS.get(u) == p: return self.ok()
            return self.deny("Basic")
        if a.startswith("Digest "):
            f = dict(re.findall(r'(\w+)="?([^",]*)"?', a[7:]))
            pw = USERS.get(f.get("username"))
            if pw is not None:
                ha1 = md5("%s:%s:%s" % (f["username"], REALM, pw)); ha2 = md5("GET:" + f["uri"])
                want = md5(":".join([ha1, f["nonce"], f["nc"], f["cnonce"], f["qop"], ha2]))
                if want == f.get("response"): return self.ok()
        return self.deny("Digest")
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("0.0.0.0", 8080), H).serve_forever()
PY"##;
    let net = format!("10.231.{}", std::process::id() % 200 + 20);
    let curl =
        |opts: &str, path: &str| format!("curl -s -o /dev/null {opts} http://{net}.2:8080/{path}");
    let Some(r) = record_servers(
        "http",
        live,
        server,
        &[
            curl("-u admin:admin", "basic"),
            curl("-u admin:nope-x", "basic"),
            curl("--digest -u admin:admin", "digest"),
            curl("--digest -u alice:own-secret-77", "digest"),
        ],
    ) else {
        return;
    };
    let s = login_summary(&r);
    let row = |proto: &str, user: &str, pw: Option<&str>, o: Outcome, d: bool| {
        (
            proto.to_string(),
            Some(user.to_string()),
            pw.map(str::to_string),
            o,
            d,
        )
    };
    assert_eq!(
        s,
        vec![
            row("http-basic", "admin", Some("admin"), Outcome::Success, true),
            row("http-basic", "admin", None, Outcome::Failure, false),
            row(
                "http-digest",
                "admin",
                Some("admin"),
                Outcome::Success,
                true
            ),
            row("http-digest", "alice", None, Outcome::Success, false),
        ],
        "{s:#?}"
    );
}

/// snmpd with the community `public`: a request with it is answered (a
/// default that works), one with another community gets no answer (failure).
#[test]
fn snmpd_communities() {
    let live = ready(&["ip", "tcpdump", "snmpd", "snmpget"]);
    let tmp = tempfile::tempdir().unwrap();
    let conf = tmp.path().join("snmpd.conf");
    std::fs::write(&conf, "rocommunity public default\n").unwrap();
    let net = format!("10.231.{}", std::process::id() % 200 + 20);
    let get = |c: &str| format!("snmpget -v2c -c {c} -t 2 -r 0 {net}.2 1.3.6.1.2.1.1.5.0");
    let Some(r) = record_servers(
        "snmp",
        live,
        &format!("snmpd -f -Lo -C -c {} udp:161", conf.display()),
        // snmpd takes a few seconds to load its MIBs before it answers.
        &[
            "sleep 3".to_string(),
            get("public"),
            get("my-own-community"),
        ],
    ) else {
        return;
    };
    let s = login_summary(&r);
    assert_eq!(
        s,
        vec![
            (
                "snmp".into(),
                None,
                Some("public".into()),
                Outcome::Success,
                true
            ),
            ("snmp".into(), None, None, Outcome::Failure, false),
        ],
        "{s:#?}"
    );
}

/// An FTP server (pyftpdlib) with a vendor's hard-coded account (Zyxel's
/// devicehaecived/1234, an FTP-only default), a wrong password and an own one.
#[test]
fn ftp_logins_with_pyftpdlib() {
    let live = ready(&["ip", "tcpdump", "python3"]);
    // Debian's python3-pyftpdlib is for the system Python.
    let live = live && sh("/usr/bin/python3 -c 'import pyftpdlib'");
    let tmp = tempfile::tempdir().unwrap();
    let server = format!(
        r#"/usr/bin/python3 -c 'from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer
a = DummyAuthorizer()
a.add_user("devicehaecived", "1234", "{d}")
a.add_user("alice", "own-secret-77", "{d}")
FTPHandler.authorizer = a
FTPHandler.auth_failed_timeout = 0
FTPServer(("0.0.0.0", 21), FTPHandler).serve_forever()'"#,
        d = tmp.path().display()
    );
    let net = format!("10.231.{}", std::process::id() % 200 + 20);
    let login = |u: &str, p: &str| {
        format!(
            "python3 -c 'import ftplib\ntry:\n f=ftplib.FTP(\"{net}.2\",timeout=5); f.login(\"{u}\",\"{p}\"); f.quit()\nexcept ftplib.error_perm: pass'"
        )
    };
    let Some(r) = record_servers(
        "ftp",
        live,
        &server,
        &[
            login("devicehaecived", "1234"),
            login("devicehaecived", "12345"),
            login("alice", "own-secret-77"),
        ],
    ) else {
        return;
    };
    let s = login_summary(&r);
    let row = |user: &str, pw: Option<&str>, o: Outcome, d: bool| {
        (
            "ftp".to_string(),
            Some(user.to_string()),
            pw.map(str::to_string),
            o,
            d,
        )
    };
    assert_eq!(
        s,
        vec![
            row("devicehaecived", Some("1234"), Outcome::Success, true),
            row("devicehaecived", None, Outcome::Failure, false),
            row("alice", None, Outcome::Success, false),
        ],
        "{s:#?}"
    );
}

/// RTSP with Digest (no qop, as IP cameras answer) from a small camera-like
/// server written here, and curl as the RTSP client: a default pair, a wrong
/// one, and an own password.
#[test]
fn rtsp_digest_with_curl() {
    let live = ready(&["ip", "tcpdump", "curl", "python3"]);
    let server = r##"python3 - <<'PY'
import hashlib, re, socketserver
USERS = {"admin": "12345", "alice": "own-secret-77"}
REALM, NONCE = "IP Camera(12345)", "a1b2c3d4e5f6"
def md5(s): return hashlib.md5(s.encode()).hexdigest()
class H(socketserver.StreamRequestHandler):
    def handle(self):
        while True:
            lines = []
            while True:
                l = self.rfile.readline()
                if not l: return
                l = l.decode(errors="replace").rstrip("\r\n")
                if not l: break
                lines.append(l)
            method, uri = lines[0].split(" ")[:2]
            h = dict(x.split(":", 1) for x in lines[1:] if ":" in x)
            h = {k.strip().lower(): v.strip() for k, v in h.items()}
            cseq = h.get("cseq", "0"); a = h.get("authorization", ""); ok = False
            if a.startswith("Digest "):
                f = dict(re.findall(r'(\w+)="?([^",]*)"?', a[7:]))
                pw = USERS.get(f.get("username"))
                if pw is not None:
                    want = md5(md5(f["username"] + ":" + REALM + ":" + pw) + ":" + f["nonce"] + ":" + md5(method + ":" + f["uri"]))
                    ok = want == f.get("response")
            if ok:
                out = "RTSP/1.0 200 OK\r\nCSeq: %s\r\nPublic: OPTIONS, DESCRIBE\r\n\r\n" % cseq
            else:
                out = 'RTSP/1.0 401 Unauthorized\r\nCSeq: %s\r\nWWW-Authenticate: Digest realm="%s", nonce="%s"\r\n\r\n' % (cseq, REALM, NONCE)
            self.wfile.write(out.encode())
class S(socketserver.ThreadingTCPServer): allow_reuse_address = True
S(("0.0.0.0", 8554), H).serve_forever()
PY"##;
    let net = format!("10.231.{}", std::process::id() % 200 + 20);
    let curl = |user: &str| {
        format!("curl -s -o /dev/null --max-time 5 --digest -u {user} rtsp://{net}.2:8554/stream")
    };
    let Some(r) = record_servers(
        "rtsp",
        live,
        server,
        &[
            curl("admin:12345"),
            curl("admin:54321x"),
            curl("alice:own-secret-77"),
        ],
    ) else {
        return;
    };
    // curl first asks without credentials (401), then answers the challenge:
    // only the requests that carry Authorization are logins.
    let s = login_summary(&r);
    let row = |user: &str, pw: Option<&str>, o: Outcome, d: bool| {
        (
            "rtsp-digest".to_string(),
            Some(user.to_string()),
            pw.map(str::to_string),
            o,
            d,
        )
    };
    assert_eq!(
        s,
        vec![
            row("admin", Some("12345"), Outcome::Success, true),
            row("admin", None, Outcome::Failure, false),
            row("alice", None, Outcome::Success, false),
        ],
        "{s:#?}"
    );
}

/// Real DHCP (busybox udhcpc asking busybox udhcpd, with a vendor class and
/// a hostname) and a UPnP description fetched with curl from a real web
/// server: the device's evidence and identity come from them.
#[test]
fn dhcp_client_and_upnp_description() {
    let live = ready(&["ip", "tcpdump", "busybox", "curl", "python3"])
        && sh("busybox udhcpc --help 2>&1 | grep -q udhcpc");
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let net = format!("10.231.{}", std::process::id() % 200 + 20);
    let n = std::process::id() % 200 + 20;
    std::fs::write(
        d.join("udhcpd.conf"),
        format!(
            "interface iwb{n}\nstart {net}.100\nend {net}.110\noption subnet 255.255.255.0\noption router {net}.2\nlease_file {}\n",
            d.join("leases").display()
        ),
    )
    .unwrap();
    std::fs::write(d.join("leases"), "").unwrap();
    std::fs::write(
        d.join("description.xml"),
        "<?xml version=\"1.0\"?>\n<root xmlns=\"urn:schemas-upnp-org:device-1-0\">\n<device>\n\
         <deviceType>urn:schemas-upnp-org:device:MediaRenderer:1</deviceType>\n\
         <friendlyName>Living Room</friendlyName>\n<manufacturer>Sonos, Inc.</manufacturer>\n\
         <modelName>Sonos One</modelName>\n<modelNumber>S18</modelNumber>\n\
         <softwareVersion>56.0-76060</softwareVersion>\n</device>\n</root>\n",
    )
    .unwrap();
    let server = format!(
        "sh -c 'busybox udhcpd -f {conf} & cd {dir} && exec python3 -m http.server 1400'",
        conf = d.join("udhcpd.conf").display(),
        dir = d.display()
    );
    let Some(r) = record_servers(
        "dhcp-upnp",
        live,
        &server,
        &[
            format!(
                "busybox udhcpc -i iwa{n} -n -q -t 3 -T 1 -s /bin/true -V android-dhcp-9 -x hostname:pixel-3a"
            ),
            format!(
                "curl -s -o /dev/null -A 'Mozilla/5.0 (Linux; Android 9; Pixel 3a Build/PQ3B.190801.002)' http://{net}.2:1400/description.xml"
            ),
        ],
    ) else {
        return;
    };
    let client = r
        .devices
        .iter()
        .find(|d| d.evidence.iter().any(|e| e.field == "vendor_class"))
        .expect("the DHCP client is a device");
    let has = |signal: &str, field: &str, value: &str| has_evidence(client, signal, field, value);
    assert!(has("dhcp", "vendor_class", "android-dhcp-9"), "{client:#?}");
    assert!(has("dhcp", "hostname", "pixel-3a"), "{client:#?}");
    assert_eq!(client.os.as_deref(), Some("Android 9"));
    assert_eq!(client.model.as_deref(), Some("Pixel 3a"));
    assert_eq!(client.kind.as_deref(), Some("phone"));
    let speaker = r
        .devices
        .iter()
        .find(|d| d.evidence.iter().any(|e| e.signal == "upnp"))
        .expect("the web server's description is evidence");
    assert_eq!(speaker.vendor.as_deref(), Some("Sonos"));
    assert_eq!(speaker.model.as_deref(), Some("Sonos One"));
    assert_eq!(speaker.firmware.as_deref(), Some("56.0-76060"));
}

/// Real service discovery: avahi-daemon publishing a Chromecast's
/// `_googlecast._tcp` service with its TXT record, and minidlna (a UPnP
/// media server) answering an SSDP M-SEARCH and serving its description
/// XML, both on the target host. The host's evidence holds every string
/// they sent, and the mDNS model names it.
#[test]
fn avahi_and_minidlna_announce_themselves() {
    let live = ready(&[
        "ip",
        "tcpdump",
        "unshare",
        "avahi-daemon",
        "minidlnad",
        "curl",
        "python3",
    ]);
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let n = std::process::id() % 200 + 20;
    let net = format!("10.231.{n}");
    for sub in ["services", "media", "db"] {
        std::fs::create_dir(d.join(sub)).unwrap();
    }
    std::fs::write(
        d.join("avahi.conf"),
        format!(
            "[server]\nuse-ipv4=yes\nuse-ipv6=no\nallow-interfaces=iwb{n}\nenable-dbus=no\n\
             host-name=livingroom\n[publish]\npublish-hinfo=no\npublish-workstation=no\n"
        ),
    )
    .unwrap();
    std::fs::write(
        d.join("services/cast.service"),
        "<?xml version=\"1.0\" standalone='no'?>\n<service-group>\n\
         <name>Chromecast-Ultra-5e1a</name>\n<service>\n<type>_googlecast._tcp</type>\n\
         <port>8009</port>\n<txt-record>md=Chromecast Ultra</txt-record>\n\
         <txt-record>fn=Living Room TV</txt-record>\n<txt-record>ve=05</txt-record>\n\
         </service>\n</service-group>\n",
    )
    .unwrap();
    std::fs::write(
        d.join("minidlna.conf"),
        format!(
            "media_dir={dir}/media\ndb_dir={dir}/db\nlog_dir={dir}\nnetwork_interface=iwb{n}\n\
             port=8200\nfriendly_name=Attic NAS\n",
            dir = d.display()
        ),
    )
    .unwrap();
    // avahi-daemon reads its services from /etc/avahi/services and writes
    // its pid under /run: a private mount namespace gives it ours.
    let server = format!(
        "sh -c 'unshare -m sh -c \"mount --bind {dir}/services /etc/avahi/services && \
         mount -t tmpfs none /run && mkdir /run/avahi-daemon && \
         exec avahi-daemon --no-drop-root --no-chroot --no-rlimits -f {dir}/avahi.conf\" & \
         exec minidlnad -d -f {dir}/minidlna.conf -P {dir}/minidlna.pid'",
        dir = d.display()
    );
    let msearch = format!(
        "python3 -c \"import socket; s = socket.socket(2, 2); \
         s.setsockopt(0, 32, socket.inet_aton('{net}.1')); s.settimeout(2); \
         s.sendto(b'M-SEARCH * HTTP/1.1\\r\\nHOST: 239.255.255.250:1900\\r\\nMAN: \\\"ssdp:discover\\\"\\r\\nMX: 1\\r\\nST: ssdp:all\\r\\n\\r\\n', ('239.255.255.250', 1900)); \
         s.recvfrom(2000)\""
    );
    let Some(r) = record_servers(
        "avahi-minidlna",
        live,
        &server,
        &[
            msearch,
            format!("curl -s -o /dev/null http://{net}.2:8200/rootDesc.xml"),
            // avahi re-announces: time for a slow machine's first announcement.
            "sleep 1".to_string(),
        ],
    ) else {
        return;
    };
    let host = r
        .devices
        .iter()
        .find(|d| d.evidence.iter().any(|e| e.signal == "mdns"))
        .expect("the avahi host is a device");
    let has = |signal: &str, field: &str, value: &str| has_evidence(host, signal, field, value);
    for (signal, field, value) in [
        ("mdns", "service", "_googlecast._tcp"),
        ("mdns", "instance", "Chromecast-Ultra-5e1a"),
        ("mdns", "txt", "md=Chromecast Ultra"),
        ("mdns", "txt", "fn=Living Room TV"),
        ("mdns", "hostname", "livingroom"),
        (
            "ssdp",
            "server",
            "Debian DLNADOC/1.50 UPnP/1.0 MiniDLNA/1.3.0",
        ),
        ("ssdp", "type", "urn:schemas-upnp-org:device:MediaServer:1"),
        ("upnp", "manufacturer", "Justin Maggard"),
        (
            "upnp",
            "model_name",
            "Windows Media Connect compatible (MiniDLNA)",
        ),
        ("upnp", "friendly_name", "Attic NAS"),
    ] {
        assert!(
            has(signal, field, value),
            "{signal} {field} {value}: {host:#?}"
        );
    }
    assert_eq!(host.vendor.as_deref(), Some("Google"), "{host:#?}");
    assert_eq!(host.kind.as_deref(), Some("streamer"));
    assert_eq!(host.model.as_deref(), Some("Chromecast Ultra"));
    assert_eq!(host.hostname.as_deref(), Some("livingroom"));
    // A locally administered MAC (a veth's) names no vendor by itself.
    assert!(host.randomised_mac);
}
