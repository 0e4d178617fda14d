//! Default-credential logins: the demo's stories, privacy of passwords that
//! are not defaults, and every credential tshark sees in the corpus reported.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use common::{analyze, bruteforces, logins, shared};
use iotwatch::detect::credentials::Outcome;
use iotwatch::event::EventKind;

fn demo() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("demo/home.pcap")
}

#[test]
fn demo_shows_a_default_login_a_brute_force_and_a_scan() {
    let r = analyze(&[&demo()], 1).unwrap();
    let logins: Vec<_> = logins(&r);
    let telnet = logins
        .iter()
        .find(|l| l.protocol == "telnet" && l.outcome == Outcome::Success)
        .unwrap();
    assert_eq!(telnet.username.as_deref(), Some("root"));
    assert_eq!(
        telnet.password.as_deref(),
        Some("xc3511"),
        "a default is shown"
    );
    assert_eq!(telnet.credential_source.as_deref(), Some("mirai"));
    let web = logins.iter().find(|l| l.protocol == "http-basic").unwrap();
    assert_eq!(
        web.password, None,
        "a password of the owner's own is never shown"
    );
    assert_eq!(web.password_masked.as_deref(), Some("s**************"));
    let brute = bruteforces(&r)[0];
    assert_eq!(
        (brute.source.ip.as_str(), brute.protocol),
        ("192.168.1.20", "telnet")
    );
    assert_eq!(
        (
            brute.attempts,
            brute.targets,
            brute.default_credentials_tried
        ),
        (6, 3, 6)
    );
    let camera = r
        .devices
        .iter()
        .find(|d| d.ips == ["192.168.1.20"])
        .unwrap();
    assert!(camera.code_of_practice.default_credentials_seen);
}

/// The owner's own password (demo: HTTP Basic "secret-horse-42") is in no
/// output: JSON, summary, or stderr.
#[test]
fn a_password_that_is_not_a_default_is_written_nowhere() {
    let secret = "secret-horse-42";
    for args in [&["--json"][..], &[][..], &["--json", "--threads", "2"][..]] {
        let o = Command::new(env!("CARGO_BIN_EXE_iotwatch"))
            .args(["analyze", "-r"])
            .arg(demo())
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success());
        let all = [o.stdout, o.stderr].concat();
        let text = String::from_utf8_lossy(&all);
        assert!(!text.contains(secret), "{args:?} leaks it");
        assert!(text.contains("xc3511"), "{args:?}: the default is shown");
    }
}

/// (file, protocol family, username) tshark extracts from the corpus.
fn tshark_credentials(path: &Path) -> BTreeSet<(String, String)> {
    let out = Command::new("tshark")
        .args(["-n", "-r"])
        .arg(path)
        .args(["-T", "fields", "-E", "occurrence=f"])
        .args(["-e", "ftp.request.command", "-e", "ftp.request.arg"])
        .args([
            "-e",
            "http.authbasic",
            "-e",
            "mqtt.username",
            "-e",
            "snmp.community",
        ])
        .args(["-e", "udp.srcport", "-e", "udp.dstport"])
        .output()
        .unwrap();
    let mut set = BTreeSet::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() < 7 {
            continue;
        }
        if f[0] == "USER" && !f[1].is_empty() {
            set.insert(("ftp".into(), f[1].to_string()));
        }
        if let Some((user, _)) = f[2].split_once(':') {
            set.insert(("http".into(), user.to_string()));
        }
        if !f[3].is_empty() {
            set.insert(("mqtt".into(), f[3].to_string()));
        }
        // A community to or from an agent (161); a trap's (162) is no login.
        if !f[4].is_empty() && (f[5] == "161" || f[6] == "161") {
            set.insert(("snmp".into(), String::new()));
        }
    }
    set
}

/// Every FTP user, HTTP Basic user, MQTT user and SNMP community tshark
/// shows on the corpus captures below is reported as a login.
#[test]
fn corpus_credentials_agree_with_tshark() {
    let Some(dir) = shared() else { return };
    if Command::new("tshark").arg("-v").output().is_err() {
        eprintln!("SKIPPED: tshark is not installed");
        return;
    }
    let files = [
        "ndpi/ftp.pcap",
        "ndpi/ftp_failed.pcap",
        "arkime/ftp.pcap",
        "zeek/ftp/bruteforce.pcap",
        "zeek/ftp/ftp-password-pass-command.pcap",
        "zeek/ftp/ipv6.pcap",
        "ndpi/http_auth.pcap",
        "zeek/http/basic-auth-with-colon.pcap",
        "zeek/http/basic-auth-with-extra-space.pcap",
        "arkime/http-basicauth.pcap",
        "arkime/arkime_synthetic.pcap",
        "arkime/mqtt_synthetic.pcap",
        "ndpi/mqtt.pcap",
        "suricata-verify/tests/mqtt31-pub-userpass/input.pcap",
        "suricata-verify/tests/mqtt311-pub-userpass/input.pcap",
        "suricata-verify/tests/mqtt5-pub-userpass/input.pcap",
        "ndpi/snmp.pcap",
        "zeek/snmp/snmpv1_get.pcap",
        "zeek/snmp/snmpv2_get_next.pcap",
        "arkime/SNMPv2c_get_requests.pcap",
    ];
    let mut missing = Vec::new();
    for f in files {
        let path = dir.join(f);
        let want = tshark_credentials(&path);
        assert!(!want.is_empty(), "{f}: tshark found no credential");
        let r = analyze(&[&path], 1).unwrap();
        let got: BTreeSet<(String, String)> = logins(&r)
            .iter()
            .map(|l| {
                let family = l.protocol.split('-').next().unwrap_or_default().to_string();
                let user = if family == "snmp" {
                    String::new()
                } else {
                    l.username.clone().unwrap_or_default()
                };
                (family, user)
            })
            .collect();
        for w in want.difference(&got) {
            missing.push(format!("{f}: {w:?}"));
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

/// The form login of DVWA is not HTTP authentication: no login.
#[test]
fn form_logins_are_not_reported() {
    let Some(dir) = shared() else { return };
    let r = analyze(&[&dir.join("chrissanders/http_dvwa_clearlogin.pcapng")], 1).unwrap();
    assert!(
        !r.events
            .iter()
            .any(|e| matches!(e.kind, EventKind::Login(_)))
    );
}

/// A user's own list in `--signatures DIR/credentials/` makes the demo's web
/// password a known default; a bad row stops the run naming file and line.
#[test]
fn users_add_their_own_credential_lists() {
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("credentials");
    std::fs::create_dir(&creds).unwrap();
    std::fs::write(
        creds.join("mine.tsv"),
        "username\tpassword\tprotocols\tlist\tvendor\tsource\nowner\tsecret-horse-42\thttp\tvendor\tMy camera\tits manual, page 3\n",
    )
    .unwrap();
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_iotwatch"))
            .args(["analyze", "--json", "-r"])
            .arg(demo())
            .args(extra)
            .output()
            .unwrap()
    };
    let o = run(&["--signatures", dir.path().to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let web = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["protocol"] == "http-basic")
        .unwrap();
    assert_eq!(web["default_credential"], true);
    assert_eq!(web["credential_source"], "vendor: My camera");
    std::fs::write(
        creds.join("mine.tsv"),
        "username\tpassword\tprotocols\tlist\tvendor\tsource\nowner\tx\thttp\tvendor\tMine\t\n",
    )
    .unwrap();
    let o = run(&["--signatures", dir.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("mine.tsv:2") && e.contains("source"), "{e}");
}
