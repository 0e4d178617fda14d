//! Any bytes as a capture file through the whole pipeline: reader, decoder,
//! flows, inventory, report. Run: `cargo +nightly fuzz run capture_pipeline`
//! (seed it with files from ../shared/captures).
#![no_main]
use std::io::Cursor;

use iotwatch::capture::{CaptureFile, Timeline};
use iotwatch::pipeline::{self, Config};
use iotwatch::proto::Registry;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(cf) = CaptureFile::from_reader("fuzz", Box::new(Cursor::new(data.to_vec()))) else { return };
    let mut tl = Timeline::from_files(vec![cf]);
    if let Ok(a) = pipeline::run(&mut tl, Config::default(), Registry::builtin(), &mut |_| {}) {
        let _ = iotwatch::output::build_report(a, tl.files(), &Default::default());
    }
});
