//! Command line: one file per subcommand.

pub mod analyze;
pub mod signatures;

use clap::{Parser, Subcommand};

/// Network traffic monitor for home IoT: which devices are on the network,
/// who logs in with default passwords, who scans like Mirai, and which
/// devices are past their security-update support.
#[derive(Debug, Parser)]
#[command(name = "iotwatch", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Analyse capture files (pcap, pcapng, gzip-compressed, or - for stdin)
    Analyze(analyze::AnalyzeArgs),
    /// Check or list the signature files (device rules, vendors, credentials …)
    Signatures(signatures::SignaturesArgs),
}
