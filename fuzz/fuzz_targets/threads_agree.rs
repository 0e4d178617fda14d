//! Any bytes as a capture file, analysed with one thread and with two: the
//! JSON reports must be the same bytes (issue 3: the report does not depend
//! on the thread count). Run: `cargo +nightly fuzz run threads_agree`
//! (seed it with small files from ../shared/captures).
//!
//! Session 16 found with it that idle flows expired by each worker's own
//! clock, so captures whose time went backwards after a jump forward gave
//! more flows with one thread than with two; flows now go idle by the
//! pipeline's clock (`FlowTable::update`).
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
    let config = Config { threads, ..Config::default() };
    let a = pipeline::run(&mut tl, config, Registry::builtin(), &mut |_| {}).ok()?;
    let mut out = Vec::new();
    write_json_report(a, tl.files(), &Default::default(), threads, &mut out).ok()?;
    Some(out)
}

fuzz_target!(|data: &[u8]| {
    let one = report(data, 1);
    let two = report(data, 2);
    assert!(one == two, "one thread and two give different reports");
});
