//! Scan and Mirai detection on real and generated captures.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use common::{analyze, manifest, scans, shared};
use iotwatch::event::EventKind;

/// (file, source, verdict, direction) of every scan event on the corpus.
fn corpus_verdicts(dir: &Path) -> BTreeSet<(String, String, String, String)> {
    let mut out = BTreeSet::new();
    for (file, _, _) in manifest(dir) {
        let Ok(r) = analyze(&[&dir.join(&file)], 1) else {
            continue;
        };
        for e in r.events {
            let EventKind::Scan(s) = e.kind else { continue };
            out.insert((
                file.clone(),
                s.source.ip,
                s.verdict.to_string(),
                s.direction.to_string(),
            ));
        }
    }
    out
}

/// Every verdict on the shared corpus is in the reviewed list and no capture
/// there is Mirai-like (none has the fingerprint, MANIFEST README).
#[test]
fn corpus_verdicts_match_the_reviewed_list() {
    let Some(dir) = shared() else { return };
    let reviewed: BTreeSet<(String, String, String, String)> =
        include_str!("data/scan-verdicts.tsv")
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| {
                let c: Vec<&str> = l.split('\t').collect();
                assert!(
                    c.len() == 5 && !c[4].is_empty(),
                    "every row needs its reason: {l}"
                );
                (c[0].into(), c[1].into(), c[2].into(), c[3].into())
            })
            .collect();
    let got = corpus_verdicts(&dir);
    assert!(got.iter().all(|v| v.2 != "mirai-like"), "{got:?}");
    let unexpected: Vec<_> = got.difference(&reviewed).collect();
    let missing: Vec<_> = reviewed.difference(&got).collect();
    assert!(
        unexpected.is_empty() && missing.is_empty(),
        "unexpected: {unexpected:#?}\nmissing: {missing:#?}"
    );
}

/// A Python with scapy for the shared generator, if there is one.
#[derive(serde::Deserialize)]
struct Truth {
    src: String,
    syns: u64,
    fingerprinted: u64,
    distinct_targets: u64,
}

/// Captures written by ../shared/tools/gen-mirai-scan.py (two Mirai-like
/// scanners among ordinary devices), checked against an independent count
/// (tests/tools/scan_truth.py): both scanners Mirai-like and outbound, every
/// fingerprinted SYN counted, distinct targets within 2 %, no one else flagged.
#[test]
fn generated_mirai_scans() {
    let Some(captures) = shared() else { return };
    let tmp = tempfile::tempdir().unwrap();
    for (packets, seed) in [(20_000u32, 7u32), (60_000, 11)] {
        let out = tmp.path().join(format!("mirai-{seed}.pcap"));
        let Some(pcap) = common::mirai_scan(&captures, &out, packets, seed) else {
            return;
        };
        let truth = Command::new("python3")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/scan_truth.py"))
            .arg(&pcap)
            .output()
            .unwrap();
        let truth: Vec<Truth> = String::from_utf8_lossy(&truth.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let bots: Vec<&Truth> = truth.iter().filter(|t| t.fingerprinted > 0).collect();
        assert_eq!(bots.len(), 2);
        for threads in [1, 2] {
            let r = analyze(&[&pcap], threads).unwrap();
            let scans: Vec<_> = scans(&r);
            assert_eq!(scans.len(), 2, "only the two bots: {scans:#?}");
            for t in &bots {
                let s = scans
                    .iter()
                    .find(|s| s.source.ip == t.src)
                    .expect("bot found");
                assert_eq!((s.verdict, s.direction), ("mirai-like", "outbound"));
                assert_eq!(s.mirai_matches, t.fingerprinted);
                assert_eq!(s.syns, t.syns);
                let err = (s.distinct_targets as f64 - t.distinct_targets as f64).abs()
                    / t.distinct_targets as f64;
                assert!(
                    err < 0.02,
                    "{}: {} vs {}",
                    t.src,
                    s.distinct_targets,
                    t.distinct_targets
                );
                assert_eq!(&s.ports[..2], &[23, 2323]);
            }
        }
    }
}
