//! The real `iotwatch tui` in tmux: keys sent with `send-keys`, the screen
//! read with `capture-pane`. Replays of known captures, attaching to a
//! monitor (in namespaces this test creates), and the clear errors given
//! before the screen is taken over. Skips with a message without tmux (and,
//! for attaching, without root or tcpreplay).

mod common;

use std::path::Path;
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::daemon::{BIN, Daemon, replay};
use common::netns::{Netns, ready, sh};

/// A tmux session running one command, removed when dropped.
struct Tmux {
    name: String,
    status: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmux {
    /// Runs `cmd` in a `w`x`h` window; its exit status lands in a file.
    fn start(tag: &str, cmd: &str, w: u16, h: u16) -> Tmux {
        let dir = tempfile::tempdir().unwrap();
        let status = dir.path().join("status");
        let name = format!("iwtui-{tag}-{}", std::process::id());
        let shell = format!("{cmd}; echo $? > {}; sleep 60", status.display());
        let ok = Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-s",
                &name,
                "-x",
                &w.to_string(),
                "-y",
                &h.to_string(),
                &shell,
            ])
            .status()
            .unwrap()
            .success();
        assert!(ok, "tmux new-session");
        Tmux {
            name,
            status,
            _dir: dir,
        }
    }

    fn keys(&self, keys: &[&str]) {
        for k in keys {
            assert!(
                Command::new("tmux")
                    .args(["send-keys", "-t", &self.name, k])
                    .status()
                    .unwrap()
                    .success()
            );
            sleep(Duration::from_millis(150));
        }
    }

    fn screen(&self) -> String {
        let o = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.name])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Waits until the screen shows every one of `texts`.
    fn wait_for(&self, texts: &[&str], secs: u64) -> String {
        let end = Instant::now() + Duration::from_secs(secs);
        loop {
            let s = self.screen();
            if texts.iter().all(|t| s.contains(t)) {
                return s;
            }
            assert!(Instant::now() < end, "waited for {texts:?}; screen:\n{s}");
            sleep(Duration::from_millis(200));
        }
    }

    fn alternate_screen(&self) -> bool {
        let o = Command::new("tmux")
            .args(["display-message", "-p", "-t", &self.name, "#{alternate_on}"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).trim() == "1"
    }

    /// `q`, then the exit status (and the terminal back to normal).
    fn quit(&self) -> i32 {
        self.keys(&["q"]);
        let end = Instant::now() + Duration::from_secs(10);
        while !self.status.exists() {
            assert!(Instant::now() < end, "tui did not exit:\n{}", self.screen());
            sleep(Duration::from_millis(100));
        }
        sleep(Duration::from_millis(200));
        assert!(!self.alternate_screen(), "terminal restored");
        std::fs::read_to_string(&self.status)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.name])
            .status();
    }
}

fn have_tmux() -> bool {
    if sh("command -v tmux") {
        return true;
    }
    eprintln!("SKIPPED: tmux is not installed (apt-get install tmux)");
    false
}

#[test]
fn replays_show_devices_logins_and_scans() {
    if !have_tmux() {
        return;
    }
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("demo/home.pcap");
    let t = Tmux::start("demo", &format!("{BIN} tui -r {}", demo.display()), 120, 40);
    let s = t.wait_for(&["done", "Devices ("], 20);
    for vendor in ["TP-Link", "Hikvision", "Google"] {
        assert!(s.contains(vendor), "{vendor} in\n{s}");
    }
    assert_eq!(t.quit(), 0);

    let Some(shared) = common::shared() else {
        eprintln!("SKIPPED (in part): ../shared/captures is absent");
        return;
    };
    // The telnet server's detail screen shows the login.
    let cap = shared.join("ndpi/telnet.pcap");
    let t = Tmux::start(
        "telnet",
        &format!("{BIN} tui -r {}", cap.display()),
        120,
        40,
    );
    t.wait_for(&["done", "192.168.0.1"], 20);
    t.keys(&["/", "192.168.0.1", "Enter", "Enter"]);
    let s = t.wait_for(&["services  tcp/23", "login telnet"], 10);
    assert!(s.contains("user fake"), "{s}");
    t.keys(&["Escape", "2"]);
    t.wait_for(&["Events (", "login"], 10);
    assert_eq!(t.quit(), 0);

    // A Mirai-like scan: the verdict on the Events and Scans screens, and
    // the scanning devices first on the Devices screen.
    let tmp = tempfile::tempdir().unwrap();
    let Some(scan) = common::mirai_scan(&shared, &tmp.path().join("mirai.pcap"), 20_000, 11) else {
        return;
    };
    let t = Tmux::start(
        "mirai",
        &format!("{BIN} tui -r {}", scan.display()),
        120,
        40,
    );
    let s = t.wait_for(&["done", "SCAN"], 30);
    let first = s.lines().find(|l| l.contains("192.168.")).unwrap_or("");
    assert!(first.contains("SCAN"), "scanners first:\n{s}");
    t.keys(&["2", "f", "f"]);
    t.wait_for(
        &["kind=scan", "mirai-like outbound scan from 192.168.1.23"],
        10,
    );
    t.keys(&["3"]);
    t.wait_for(&["Scans (2)", "mirai-like"], 10);
    assert_eq!(t.quit(), 0);
}

#[test]
fn a_bad_source_is_reported_before_the_screen_is_taken() {
    let analyze = Command::new(BIN)
        .args(["analyze", "-r", "/nonexistent/x.pcap"])
        .output()
        .unwrap();
    let tui = Command::new(BIN)
        .args(["tui", "-r", "/nonexistent/x.pcap"])
        .output()
        .unwrap();
    assert_eq!(tui.status.code(), Some(1));
    assert_eq!(tui.stderr, analyze.stderr);
    assert!(tui.stdout.is_empty(), "no screen drawn");
    let o = Command::new(BIN)
        .args(["tui", "--attach", "/nonexistent/iotwatch.sock"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.starts_with("iotwatch: cannot attach to /nonexistent/iotwatch.sock (is `iotwatch monitor` running? give --attach SOCKET): "),
        "{e}"
    );
}

#[test]
fn attached_to_a_monitor_that_goes_away_and_comes_back() {
    if !have_tmux() || !ready(&["ip", "tcpreplay", "curl"]) {
        return;
    }
    let Some(shared) = common::shared() else {
        eprintln!("SKIPPED: ../shared/captures is absent");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let Some(scan) = common::mirai_scan(&shared, &dir.join("mirai.pcap"), 20_000, 11) else {
        return;
    };
    let ns = Netns::new("tui").expect("namespaces");
    let n = std::process::id() % 200 + 20;
    let (mon_if, replay_if) = (format!("iwa{n}"), format!("iwb{n}"));
    let d = Daemon::start(&ns.scanner, &mon_if, dir, "1");
    let sock = dir.join("control.sock");
    let t = Tmux::start(
        "attach",
        &format!("{BIN} tui --attach {}", sock.display()),
        120,
        40,
    );
    t.wait_for(&["live iwa", "Devices ("], 10);
    replay(
        &ns,
        &replay_if,
        &shared.join("ndpi/telnet.pcap"),
        "--topspeed",
    );
    replay(&ns, &replay_if, &scan, "--pps 10000");
    let s = t.wait_for(&["Western Digit", "Hikvision", "SCAN"], 20);
    assert!(s.contains("Dahua"), "{s}");
    t.keys(&["/", "192.168.0.1", "Enter", "Enter"]);
    t.wait_for(&["login telnet", "user fake"], 10);
    t.keys(&["Escape", "Escape", "2"]);
    t.wait_for(&["mirai-like outbound scan"], 10);

    // The monitor stops: "disconnected", and the TUI keeps retrying.
    let (_, ok) = d.stop("TERM");
    assert!(ok);
    t.wait_for(&["disconnected from"], 10);
    // It comes back: the snapshot (from its store) fills the screen again.
    let d = Daemon::start(&ns.scanner, &mon_if, dir, "2");
    t.keys(&["1"]);
    let end = Instant::now() + Duration::from_secs(15);
    while t.screen().contains("disconnected") {
        assert!(Instant::now() < end, "no reconnection:\n{}", t.screen());
        sleep(Duration::from_millis(200));
    }
    t.wait_for(&["Western Digit", "Hikvision", "up 0h00m0"], 10);
    assert_eq!(t.quit(), 0);
    let (_, ok) = d.stop("TERM");
    assert!(ok);
}
