//! `iotwatch monitor` end to end: the daemon captures on one end of a veth
//! pair in namespaces this test creates; captures from ../shared are
//! replayed into the other end with tcpreplay and a real telnet login runs
//! through it. Then restarts (SIGTERM, SIGKILL), a control client that stops
//! reading, and the error paths with their exact messages. Skips with a
//! message when not root or when a tool is missing (CI installs them).

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::daemon::{BIN, Daemon, devices, replay};
use common::netns::{Netns, busybox_telnetd, ready, sh, telnet_logins};
use serde_json::Value;

/// `n` home devices, one UDP packet each, with MACs from `first`.
fn many_devices(path: &Path, first: u32, n: u32) {
    let frames: Vec<(u64, Vec<u8>)> = (0..n)
        .map(|i| {
            let id = first + i;
            let mac = [
                0x00,
                0x1b,
                0x44,
                (id >> 16) as u8,
                (id >> 8) as u8,
                id as u8,
            ];
            let ip = [10, 99, (id >> 8) as u8, id as u8];
            let b = etherparse::PacketBuilder::ethernet2(mac, [0x00, 0x1b, 0x44, 0xff, 0xff, 0xff])
                .ipv4(ip, [10, 99, 255, 1], 64)
                .udp(40000, 9);
            let mut v = Vec::new();
            b.write(&mut v, b"hello").unwrap();
            (1_700_000_000_000_000 + u64::from(i), v)
        })
        .collect();
    common::write_pcap(path, 1, &frames);
}

fn kinds(events: &[Value], kind: &str) -> Vec<Value> {
    events
        .iter()
        .filter(|e| e["kind"] == kind)
        .cloned()
        .collect()
}

#[test]
fn monitor_end_to_end_restarts_and_a_stuck_client() {
    if !ready(&["ip", "tcpreplay", "curl", "openssl", "unshare"]) {
        return;
    }
    let Some(shared) = common::shared() else {
        eprintln!("SKIPPED: ../shared/captures is absent");
        return;
    };
    let captures = shared.clone();
    if common::scapy_python().is_none() {
        return;
    }
    let Some(ns) = Netns::new("mon") else {
        panic!("could not create the namespaces");
    };
    let n = std::process::id() % 200 + 20;
    let (mon_if, replay_if) = (format!("iwa{n}"), format!("iwb{n}"));
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let scan = common::mirai_scan(&shared, &dir.join("mirai.pcap"), 20_000, 7).unwrap();
    let fleet = dir.join("fleet.pcap");
    many_devices(&fleet, 0, 6000);

    // Run 1: replays and a real login.
    let d = Daemon::start(&ns.scanner, &mon_if, dir, "1");
    let mut sent = 0;
    for f in ["ndpi/telnet.pcap", "ndpi/ftp.pcap", "ndpi/mqtt.pcap"] {
        sent += replay(&ns, &replay_if, &captures.join(f), "--topspeed");
    }
    sent += replay(&ns, &replay_if, &scan, "--pps 10000");
    let td = dir.join("telnetd");
    std::fs::create_dir(&td).unwrap();
    let Some(mut telnetd) = busybox_telnetd(&ns, &td, "xc3511") else {
        return;
    };
    sleep(Duration::from_millis(1500));
    assert!(
        telnet_logins(&ns, &[("root", "wrongpass1"), ("root", "xc3511")]),
        "telnet client ran"
    );
    sleep(Duration::from_millis(2500));

    let events = d.events();
    let logins = kinds(&events, "login");
    let protocols: Vec<&str> = logins
        .iter()
        .filter_map(|l| l["protocol"].as_str())
        .collect();
    for p in ["telnet", "ftp", "mqtt"] {
        assert!(protocols.contains(&p), "no {p} login in {logins:#?}");
    }
    let real = logins
        .iter()
        .find(|l| l["password"] == "xc3511")
        .unwrap_or_else(|| panic!("the busybox login: {logins:#?}"));
    assert_eq!(real["outcome"], "success");
    assert_eq!(real["default_credential"], true);
    assert_eq!(real["server"]["ip"], format!("{}.2", ns.net()));
    // The wrong password is never written.
    let all = std::fs::read_to_string(dir.join("events-1.jsonl")).unwrap();
    assert!(!all.contains("wrongpass1"));
    let scans = kinds(&events, "scan");
    assert!(
        scans
            .iter()
            .any(|s| s["verdict"] == "mirai-like" && s["mirai_fingerprint"] == true),
        "{scans:#?}"
    );
    let new = kinds(&events, "new_device");
    assert!(new.len() >= 5, "{new:#?}");
    // The camera of the generated scan.
    assert!(
        new.iter().any(|e| e["mac"] == "28:57:be:4a:17:23"),
        "{new:#?}"
    );

    // Metrics count what was sent (the login traffic on top).
    let captured = d.metric(&format!("iotwatch_packets_total{{interface=\"{mon_if}\"}}"));
    let dropped = d.metric(&format!(
        "iotwatch_drops_total{{interface=\"{mon_if}\",where=\"kernel\"}}"
    ));
    assert!(
        captured + dropped >= sent as f64,
        "captured {captured} + dropped {dropped} of {sent}"
    );
    assert!(d.metric("iotwatch_events_total{kind=\"login\"") >= 1.0);

    // The store has the devices, and `iotwatch devices` lists them.
    let stored = devices(&dir.join("iotwatch.db"));
    let macs: Vec<&str> = stored.iter().filter_map(|d| d["mac"].as_str()).collect();
    for e in &new {
        assert!(macs.contains(&e["mac"].as_str().unwrap()), "{e} not stored");
    }
    let table = Command::new(BIN)
        .args(["devices", "--db"])
        .arg(dir.join("iotwatch.db"))
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("28:57:be:4a:17:23") && table.contains("Hikvision"),
        "{table}"
    );

    // A control client gets hello, then a snapshot with the devices.
    let c = UnixStream::connect(dir.join("control.sock")).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut lines = BufReader::new(c).lines();
    let hello: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(hello["type"], "hello");
    assert_eq!(hello["version"], 1);
    let snap: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(snap["type"], "snapshot");
    assert_eq!(snap["devices"].as_array().unwrap().len(), stored.len());
    drop(lines);

    // A client that never reads: dropped, counted, capture unharmed.
    let stuck = UnixStream::connect(dir.join("control.sock")).unwrap();
    let before = d.metric(&format!("iotwatch_packets_total{{interface=\"{mon_if}\"}}"));
    let fleet_sent = replay(&ns, &replay_if, &fleet, "--pps 20000");
    // 6,000 new devices are reported over a few ticks (1,024 a tick).
    let end = Instant::now() + Duration::from_secs(15);
    while d.metric("iotwatch_control_clients_dropped_total") < 1.0 && Instant::now() < end {
        sleep(Duration::from_millis(250));
    }
    assert_eq!(d.metric("iotwatch_control_clients_dropped_total"), 1.0);
    let after = d.metric(&format!("iotwatch_packets_total{{interface=\"{mon_if}\"}}"));
    let queue = d.metric(&format!(
        "iotwatch_drops_total{{interface=\"{mon_if}\",where=\"queue\"}}"
    ));
    assert!(
        after - before >= fleet_sent as f64,
        "{before} -> {after} of {fleet_sent}"
    );
    assert_eq!(queue, 0.0);
    // 6,000 devices fit in the live device table.
    assert_eq!(d.metric("iotwatch_devices_full"), 0.0);
    drop(stuck);

    // SIGTERM: clean and prompt.
    let end = Instant::now() + Duration::from_secs(15);
    while devices(&dir.join("iotwatch.db")).len() < 6000 && Instant::now() < end {
        sleep(Duration::from_millis(250));
    }
    let known = devices(&dir.join("iotwatch.db")).len();
    assert!(known >= 6000, "{known}");
    let (took, ok) = d.stop("TERM");
    assert!(ok, "exit status after SIGTERM");
    assert!(took < Duration::from_secs(2), "{took:?}");

    // Run 2: the same traffic again: nothing is new.
    let d = Daemon::start(&ns.scanner, &mon_if, dir, "2");
    replay(
        &ns,
        &replay_if,
        &captures.join("ndpi/telnet.pcap"),
        "--topspeed",
    );
    replay(&ns, &replay_if, &fleet, "--pps 20000");
    sleep(Duration::from_millis(2500));
    let again = d.events();
    assert!(kinds(&again, "login").len() == 1, "{again:#?}");
    assert!(
        kinds(&again, "new_device").is_empty(),
        "{:#?}",
        kinds(&again, "new_device")
    );

    // SIGKILL in the middle of 4000 new devices: what was committed stays.
    let more = dir.join("more.pcap");
    many_devices(&more, 100_000, 4000);
    let mut bg = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.target,
            "tcpreplay",
            "-q",
            "-i",
            &replay_if,
            "--pps",
            "2000",
        ])
        .arg(&more)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    sleep(Duration::from_millis(1600));
    let committed = devices(&dir.join("iotwatch.db")).len();
    let (_, _) = d.stop("KILL");
    let _ = bg.wait();
    assert!(
        committed > known,
        "{committed} > {known}: some of the new ones were committed"
    );
    let d = Daemon::start(&ns.scanner, &mon_if, dir, "3");
    assert!(!d.stderr().contains("damaged"), "{}", d.stderr());
    let after_kill = devices(&dir.join("iotwatch.db")).len();
    assert!(after_kill >= committed, "{after_kill} >= {committed}");
    replay(&ns, &replay_if, &fleet, "--pps 20000");
    sleep(Duration::from_millis(2500));
    assert!(kinds(&d.events(), "new_device").is_empty());
    let (_, ok) = d.stop("INT");
    assert!(ok);
    let _ = telnetd.kill();
    let _ = telnetd.wait();
    sh(&format!("ip netns pids {} | xargs -r kill", ns.target));
}

fn monitor(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("monitor")
        .args(args)
        .output()
        .unwrap()
}

fn as_nobody(args: &[&str]) -> Output {
    Command::new("setpriv")
        .args([
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            BIN,
            "monitor",
        ])
        .args(args)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A monitor listening on loopback (it sends nothing), for the tests that
/// need one running.
fn on_lo(db: &str, sock: &str, stderr: Stdio) -> Child {
    Command::new(BIN)
        .args([
            "monitor",
            "-i",
            "lo",
            "-f",
            "udp port 9",
            "--no-syslog",
            "--db",
            db,
        ])
        .args(["--control", sock])
        .stderr(stderr)
        .spawn()
        .unwrap()
}

/// Each error path: exit status 1 and the one line that says what to do.
#[test]
fn monitor_error_paths() {
    if !ready(&["setpriv"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    // Others may enter (not write): the unprivileged runs below need to.
    sh(&format!("chmod 755 {}", d.display()));
    let db = d.join("m.db");
    let db = db.to_str().unwrap();
    let sock = d.join("c.sock");
    let sock = sock.to_str().unwrap();

    let o = monitor(&["-i", "nosuch0", "--db", db, "--control", sock]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "iotwatch: no interface named nosuch0 (`ip link` lists them)\n"
    );

    let o = monitor(&[
        "-i",
        "lo",
        "-f",
        "port nonsense",
        "--db",
        db,
        "--control",
        sock,
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "iotwatch: invalid filter \"port nonsense\": libpcap error: unknown port 'nonsense'\n"
    );

    let o = monitor(&["--db", db]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("iotwatch: no interface: give -i IFACE"),
        "{}",
        stderr(&o)
    );

    // Without the capture capability (a user's own store and socket).
    let mine = d.join("nobody");
    std::fs::create_dir(&mine).unwrap();
    sh(&format!("chown 65534:65534 {}", mine.display()));
    let o = as_nobody(&[
        "-i",
        "lo",
        "--db",
        &format!("{}/m.db", mine.display()),
        "--control",
        &format!("{}/c.sock", mine.display()),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!(
            "iotwatch: cannot capture on lo: permission denied. Run as root, or: sudo setcap cap_net_raw,cap_net_admin+eip {}\n",
            std::fs::canonicalize(BIN).unwrap().display()
        )
    );

    // A store this user cannot write.
    let o = as_nobody(&["-i", "lo", "--db", db, "--control", sock]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.starts_with(&format!("iotwatch: database {db} is read-only ("))
            && e.ends_with("): give --db a file this user can write, or fix its permissions\n"),
        "{e}"
    );

    // A store in use by another monitor (capturing on lo: it sends nothing).
    let mut first = on_lo(db, sock, Stdio::null());
    let end = Instant::now() + Duration::from_secs(10);
    while !Path::new(sock).exists() && Instant::now() < end {
        sleep(Duration::from_millis(50));
    }
    let o = monitor(&["-i", "lo", "--db", db, "--control", &format!("{sock}2")]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!(
            "iotwatch: database {db} is locked: another iotwatch monitor is using it (stop it, or give --db another file)\n"
        )
    );
    // The same socket with another store (the store is checked first).
    let o = monitor(&["-i", "lo", "--db", &format!("{db}2"), "--control", sock]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!(
            "iotwatch: control socket {sock} is in use: another iotwatch monitor is running (or give --control another path)\n"
        )
    );
    sh(&format!("kill -TERM {}", first.id()));
    assert!(first.wait().unwrap().success());

    // A damaged store is moved aside with a warning, and a new one started.
    std::fs::write(db, b"garbage, not SQLite\n".repeat(100)).unwrap();
    let _ = std::fs::remove_file(format!("{db}-wal"));
    let mut again = on_lo(db, sock, Stdio::piped());
    let mut err = BufReader::new(again.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(
        line.starts_with(&format!("iotwatch: warning: database {db} is damaged ("))
            && line.contains(&format!("moved it to {db}.corrupt-")),
        "{line}"
    );
    sh(&format!("kill -TERM {}", again.id()));
    assert!(again.wait().unwrap().success());
    let aside: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1);
    assert!(
        std::fs::read(aside[0].path())
            .unwrap()
            .starts_with(b"garbage")
    );

    // Reading a store that is not there.
    let o = Command::new(BIN)
        .args(["devices", "--db", "/nonexistent/iotwatch.db"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "iotwatch: no database at /nonexistent/iotwatch.db (start `iotwatch monitor` first, or give --db FILE)\n"
    );
}

/// SIGHUP: a good config is taken up (the monitor starts itself afresh with
/// the same pid); a broken one is refused and the running setup kept.
#[test]
fn sighup_reloads_the_config_and_refuses_a_broken_one() {
    if !ready(&[]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let config = d.join("config.toml");
    std::fs::write(
        &config,
        "interface = [\"lo\"]\nfilter = \"udp port 9\"\nsyslog = false\n",
    )
    .unwrap();
    let sock = d.join("c.sock");
    let mut child = Command::new(BIN)
        .args(["monitor", "--config"])
        .arg(&config)
        .arg("--db")
        .arg(d.join("m.db"))
        .arg("--control")
        .arg(&sock)
        .stderr(std::fs::File::create(d.join("stderr")).unwrap())
        .spawn()
        .unwrap();
    let wait_for = |text: &str, n: usize| {
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            let e = std::fs::read_to_string(d.join("stderr")).unwrap_or_default();
            if e.matches(text).count() >= n {
                return e;
            }
            assert!(Instant::now() < end, "waited for {n} × {text:?}:\n{e}");
            sleep(Duration::from_millis(50));
        }
    };
    wait_for("monitoring lo", 1);
    std::fs::write(
        &config,
        "interface = [\"lo\"]\nfilter = \"udp port 10\"\nsyslog = false\nwarn_days = 30\n",
    )
    .unwrap();
    sh(&format!("kill -HUP {}", child.id()));
    wait_for("SIGHUP: reloading config and signatures", 1);
    wait_for("monitoring lo", 2);
    let end = Instant::now() + Duration::from_secs(10);
    while !sock.exists() {
        assert!(Instant::now() < end, "socket back after the reload");
        sleep(Duration::from_millis(50));
    }
    std::fs::write(&config, "interfaces = [\"lo\"]\n").unwrap();
    sh(&format!("kill -HUP {}", child.id()));
    let e = wait_for("SIGHUP ignored, keeping the running setup", 1);
    assert!(e.contains("unknown field `interfaces`"), "{e}");
    wait_for("monitoring lo", 3);
    assert!(child.try_wait().unwrap().is_none(), "still running");
    sleep(Duration::from_millis(300));
    sh(&format!("kill -TERM {}", child.id()));
    assert!(child.wait().unwrap().success());
}
