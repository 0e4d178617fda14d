//! Detectors: judgements over what the lower stages saw (scans now; brute
//! force, default credentials and end of support as they land).

pub mod credentials;
pub mod distinct;
pub mod scan;
