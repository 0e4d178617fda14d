//! iotwatch: a network traffic monitor for home IoT.
//!
//! The pipeline, by stage: [`capture`] → [`decode`] → [`flow`] → [`proto`]
//! analyzers → [`inventory`] ([`identify`] reads what each device is) and detectors → [`event`]s → [`output`].
//! [`pipeline`] runs the stages over capture files on one or more threads.

pub mod capture;
pub mod cli;
pub mod decode;
pub mod detect;
pub mod event;
pub mod flow;
pub mod identify;
pub mod inventory;
pub mod memo;
pub mod monitor;
pub mod netconf;
pub mod output;
pub mod pipeline;
pub mod proto;
pub mod signatures;
pub mod store;
pub mod time;
pub mod tui;
