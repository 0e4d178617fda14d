//! Detectors: judgements over what the lower stages saw: scans, default
//! credentials and brute force, end of support.

pub mod credentials;
pub mod distinct;
pub mod scan;
pub mod support;
