//! Any bytes as a capture file, analysed with one thread and with two to
//! four: the JSON reports must be the same bytes (issue 3: the report does
//! not depend on the thread count). Run: `cargo +nightly fuzz run
//! threads_agree` (seed it with small files from ../shared/captures).
//!
//! Session 16 found with it that idle flows expired by each worker's own
//! clock, so captures whose time went backwards after a jump forward gave
//! more flows with one thread than with two; flows now go idle by the
//! pipeline's clock (`FlowTable::update`).
//!
//! Session 18 gave it a cap of four devices, once full inventories kept
//! their least keys (`inventory::WhenFull`): before, each worker kept the
//! first devices it saw, so more devices than the cap gave one report with
//! one thread and another with two.
#![no_main]
use std::io::Cursor;

use iotwatch::capture::{CaptureFile, Timeline};
use iotwatch::output::report::write_json_report;
use iotwatch::pipeline::{self, Config};
use iotwatch::proto::Registry;
use libfuzzer_sys::fuzz_target;

fn report(data: &[u8], threads: usize) -> Option<Vec<u8>> {
    let cf = CaptureFile::from_reader("fuzz", Box::new(Cursor::new(data.to_vec()))).ok()?;
    let mut tl = Timeline::from_files(vec![cf]);
    // Tables that a few packets fill: one flow and one SYN-cache slot a
    // shard bucket, and four devices.
    let config = Config {
        threads,
        max_flows: iotwatch::flow::SHARD_BUCKETS,
        syn_cache: iotwatch::flow::SHARD_BUCKETS,
        max_devices: 4,
        ..Config::default()
    };
    let a = pipeline::run(&mut tl, config, Registry::builtin(), &mut |_| {}).ok()?;
    let mut out = Vec::new();
    drop(write_json_report(a, tl.files(), &Default::default(), threads, &mut out).ok()?);
    Some(out)
}

fuzz_target!(|data: &[u8]| {
    // Two, three or four threads: two shards, or three.
    let threads = 2 + usize::from(data.last().copied().unwrap_or(0) % 3);
    let one = report(data, 1);
    let more = report(data, threads);
    assert!(one == more, "one thread and {threads} give different reports");
});
