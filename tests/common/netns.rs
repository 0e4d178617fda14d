//! Two network namespaces joined by a veth pair, created for a test and
//! removed after it: nothing is routed anywhere else.

use std::process::{Child, Command, Stdio};

pub struct Netns {
    pub scanner: String,
    pub target: String,
}

impl Netns {
    /// Two namespaces joined by a veth pair on 10.231.N.0/24: the scanner at
    /// .1, the target at .2 to .9 (several addresses, so a scan has hosts).
    pub fn new(tag: &str) -> Option<Netns> {
        let n = std::process::id() % 200 + 20;
        let ns = Netns {
            scanner: format!("iw-{tag}-a-{n}"),
            target: format!("iw-{tag}-b-{n}"),
        };
        let (a, b) = (&ns.scanner, &ns.target);
        let net = format!("10.231.{n}");
        let ok = [
            format!("ip netns add {a}"),
            format!("ip netns add {b}"),
            format!("ip link add iwa{n} netns {a} type veth peer name iwb{n} netns {b}"),
            format!("ip -n {a} link set lo up"),
            format!("ip -n {b} link set lo up"),
            format!("ip -n {a} addr add {net}.1/24 dev iwa{n}"),
            format!("ip -n {a} link set iwa{n} up"),
            format!("ip -n {b} link set iwb{n} up"),
        ]
        .iter()
        .chain(
            &(2..10)
                .map(|h| format!("ip -n {b} addr add {net}.{h}/24 dev iwb{n}"))
                .collect::<Vec<_>>(),
        )
        .all(|c| sh(c));
        ok.then_some(ns)
    }

    pub fn net(&self) -> String {
        format!("10.231.{}", std::process::id() % 200 + 20)
    }

    pub fn exec(&self, ns: &str, cmd: &str) -> bool {
        sh(&format!("ip netns exec {ns} {cmd}"))
    }

    pub fn spawn(&self, ns: &str, cmd: &str) -> Child {
        Command::new("sh")
            .arg("-c")
            .arg(format!("exec ip netns exec {ns} {cmd}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        sh(&format!("ip netns del {}", self.scanner));
        sh(&format!("ip netns del {}", self.target));
    }
}

pub fn sh(cmd: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

pub fn ready(tools: &[&str]) -> bool {
    // Only root may create namespaces.
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"));
    if !root {
        eprintln!("SKIPPED: network-namespace tests need root");
        return false;
    }
    for t in tools {
        if !sh(&format!("command -v {t}")) {
            eprintln!("SKIPPED: {t} is not installed");
            return false;
        }
    }
    true
}

/// busybox telnetd in the target namespace, on port 23, whose root password
/// is `password` (its own /etc/passwd and /etc/shadow, bind-mounted in a
/// private mount namespace). `None`, with a message, without busybox.
pub fn busybox_telnetd(ns: &Netns, dir: &std::path::Path, password: &str) -> Option<Child> {
    let busybox = Command::new("sh")
        .arg("-c")
        .arg("command -v busybox")
        .output()
        .ok()?;
    let busybox = String::from_utf8_lossy(&busybox.stdout).trim().to_string();
    let applets = Command::new(&busybox)
        .arg("--list")
        .output()
        .map(|o| o.stdout)
        .unwrap_or_default();
    if busybox.is_empty()
        || !String::from_utf8_lossy(&applets)
            .lines()
            .any(|l| l == "telnetd")
    {
        eprintln!("SKIPPED: no busybox with telnetd (apt-get install busybox-static)");
        return None;
    }
    let hash = Command::new("openssl")
        .args(["passwd", "-6", "-salt", "iotwatch", password])
        .output()
        .ok()?;
    let hash = String::from_utf8_lossy(&hash.stdout).trim().to_string();
    std::fs::write(dir.join("passwd"), "root:x:0:0:root:/root:/bin/sh\n").ok()?;
    std::fs::write(
        dir.join("shadow"),
        format!("root:{hash}:19000:0:99999:7:::\n"),
    )
    .ok()?;
    std::os::unix::fs::symlink(&busybox, dir.join("login")).ok()?;
    let server = format!(
        "unshare -m sh -c 'mount --bind {d}/passwd /etc/passwd && mount --bind {d}/shadow /etc/shadow && exec {busybox} telnetd -F -p 23 -l {d}/login'",
        d = dir.display()
    );
    Some(ns.spawn(&ns.target, &server))
}

/// Telnet logins from the scanner namespace to `{net}.2:23`, one connection
/// per (user, password) pair, each answered prompt by prompt. True when the
/// client ran.
pub fn telnet_logins(ns: &Netns, pairs: &[(&str, &str)]) -> bool {
    let pairs: Vec<String> = pairs
        .iter()
        .map(|(u, p)| format!("(\"{u}\",\"{p}\")"))
        .collect();
    let client = format!(
        r##"python3 - <<'PY'
import socket, time
def read_until(s, words, limit=8.0):
    buf = b""; end = time.time() + limit
    while time.time() < end and not any(w in buf for w in words):
        s.settimeout(max(0.05, end - time.time()))
        try:
            chunk = s.recv(4096)
        except socket.timeout:
            break
        if not chunk:
            break
        buf += chunk
    return buf
for user, pw in [{pairs}]:
    s = socket.create_connection(("{net}.2", 23), timeout=5)
    read_until(s, [b"login:"])
    s.sendall(user.encode() + b"\r\n")
    read_until(s, [b"assword:"])
    s.sendall(pw.encode() + b"\r\n")
    read_until(s, [b"incorrect", b"# ", b"$ "])
    s.close()
PY"##,
        pairs = pairs.join(","),
        net = ns.net()
    );
    ns.exec(&ns.scanner, &client)
}
