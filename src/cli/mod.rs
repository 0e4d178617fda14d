//! Command line: one file per subcommand.

pub mod analyze;
pub mod config;
pub mod monitor;
pub mod signatures;
pub mod store;

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
    /// Capture live on interfaces around the clock: events as JSON lines,
    /// devices in a SQLite store, a control socket for the TUI, metrics
    Monitor(Box<monitor::MonitorArgs>),
    /// Terminal UI: live (-i), replaying a capture (-r), or attached to a
    /// running monitor (--attach)
    Tui(Box<crate::tui::TuiArgs>),
    /// List the devices in the monitor's store
    Devices(store::DevicesArgs),
    /// List the events in the monitor's store
    Events(store::EventsArgs),
    /// Check or list the signature files (device rules, vendors, credentials …)
    Signatures(signatures::SignaturesArgs),
}

/// `--signatures DIR`: checked as `iotwatch signatures check DIR` does, then
/// laid over the built-in signatures for this process.
pub fn install_signatures(dir: &std::path::Path) -> anyhow::Result<()> {
    if !dir.is_dir() {
        anyhow::bail!("{}: --signatures needs a directory", dir.display());
    }
    crate::signatures::check::check(Some(dir))?;
    crate::signatures::credentials::CredentialDb::install_overlay(dir)?;
    crate::signatures::devices::DeviceRules::install_overlay(dir)?;
    crate::signatures::vendors::VendorDb::install_overlay(dir)?;
    crate::signatures::support::SupportDb::install_overlay(dir)?;
    Ok(())
}

/// `--home-net CIDR…`, or the defaults when none is given.
pub fn home_nets(cidrs: &[String]) -> anyhow::Result<crate::netconf::HomeNets> {
    if cidrs.is_empty() {
        Ok(crate::netconf::HomeNets::default())
    } else {
        crate::netconf::HomeNets::parse(cidrs.iter().map(String::as_str))
            .map_err(anyhow::Error::msg)
    }
}
