//! Output stage: the report (JSON and the human summary).

mod pretty;
pub mod report;
pub mod summary;

pub use report::{Report, Spent, build_report, write_json_report};
