//! `iotwatch monitor`: the live daemon's command line and config file.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Result, bail};
use clap::Args;

use super::config::{self, FileConfig};
use crate::capture::live::LiveOptions;
use crate::monitor::control::Control;
use crate::monitor::{self, Exit, Settings, Signals};

#[derive(Debug, Args, Default)]
pub struct MonitorArgs {
    /// Interface to capture on (repeatable: -i br-lan -i wan)
    #[arg(short = 'i', long = "interface", value_name = "IFACE")]
    pub interface: Vec<String>,

    /// Capture filter (BPF, as tcpdump takes it)
    #[arg(short = 'f', long, value_name = "FILTER")]
    pub filter: Option<String>,

    /// Bytes captured per packet [default: 65535]
    #[arg(short = 's', long, value_name = "BYTES")]
    pub snaplen: Option<i32>,

    /// Kernel capture buffer in KiB, as tcpdump's -B [default: 4096]
    #[arg(short = 'B', long = "buffer-size", value_name = "KIB")]
    pub buffer_size: Option<i32>,

    /// Do not put the interface into promiscuous mode
    #[arg(short = 'p', long = "no-promisc")]
    pub no_promisc: bool,

    /// Hand each packet over as it arrives instead of in 50 ms blocks (more
    /// CPU; needs a larger -B, as each packet takes a snaplen-sized slot)
    #[arg(long = "immediate-mode")]
    pub immediate_mode: bool,

    /// Append events as JSON lines to FILE (- for stdout)
    #[arg(long, value_name = "FILE")]
    pub events: Option<String>,

    /// Do not send medium-or-worse events to the system log (/dev/log)
    #[arg(long = "no-syslog")]
    pub no_syslog: bool,

    /// The device and event store (SQLite) [default: /var/lib/iotwatch/iotwatch.db
    /// as root, else $XDG_DATA_HOME/iotwatch/iotwatch.db]
    #[arg(long, value_name = "FILE")]
    pub db: Option<PathBuf>,

    /// Control socket the TUI attaches to [default: /run/iotwatch/iotwatch.sock as
    /// root, else $XDG_RUNTIME_DIR/iotwatch.sock]
    #[arg(long, value_name = "PATH")]
    pub control: Option<PathBuf>,

    /// No control socket
    #[arg(long = "no-control", conflicts_with = "control")]
    pub no_control: bool,

    /// Group given the control socket (mode 0660), e.g. iotwatch
    #[arg(long = "control-group", value_name = "GROUP")]
    pub control_group: Option<String>,

    /// Serve Prometheus metrics on ADDR (e.g. 127.0.0.1:9469) [default: off]
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<String>,

    /// Keep the last packets as evidence in a ring of pcap files FILE0, FILE1 …
    #[arg(short = 'w', long = "write", value_name = "FILE")]
    pub write: Option<String>,

    /// Megabytes per ring file, as tcpdump's -C [default: 16]
    #[arg(short = 'C', long = "file-size", value_name = "MB", requires = "write")]
    pub file_size: Option<u64>,

    /// Files in the ring, as tcpdump's -W [default: 4]
    #[arg(short = 'W', long = "file-count", value_name = "N", requires = "write")]
    pub file_count: Option<usize>,

    /// A home network in CIDR form (repeatable) [default: RFC 1918, 100.64/10, link-local, fc00::/7]
    #[arg(long = "home-net", value_name = "CIDR")]
    pub home_net: Vec<String>,

    /// A directory of your own signatures laid out like signatures/
    #[arg(long, value_name = "DIR")]
    pub signatures: Option<PathBuf>,

    /// Support ending within this many days is reported as ending-soon [default: 90]
    #[arg(long = "warn-days", value_name = "N")]
    pub warn_days: Option<i64>,

    /// TOML file setting any of these options (the command line wins)
    /// [default: /etc/iotwatch/config.toml if it exists]
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// The command line over the config file over the defaults.
pub fn resolve(args: &MonitorArgs, file: FileConfig) -> Result<(Settings, Option<PathBuf>)> {
    let interfaces = if args.interface.is_empty() {
        file.interface.unwrap_or_default()
    } else {
        args.interface.clone()
    };
    if interfaces.is_empty() {
        bail!(
            "no interface: give -i IFACE (`ip link` lists them) or `interface` in the config file"
        );
    }
    let defaults = LiveOptions::default();
    let live = LiveOptions {
        snaplen: args.snaplen.or(file.snaplen).unwrap_or(defaults.snaplen),
        buffer_size: args
            .buffer_size
            .or(file.buffer_size)
            .map_or(defaults.buffer_size, |k| k.saturating_mul(1024)),
        promisc: !args.no_promisc && file.promisc.unwrap_or(true),
        immediate: args.immediate_mode || file.immediate.unwrap_or(false),
        filter: args.filter.clone().or(file.filter),
    };
    if live.snaplen <= 0 || live.buffer_size <= 0 {
        bail!("--snaplen and --buffer-size must be positive");
    }
    let home_net = if args.home_net.is_empty() {
        file.home_net.unwrap_or_default()
    } else {
        args.home_net.clone()
    };
    let control = if args.no_control {
        None
    } else {
        Some(
            args.control
                .clone()
                .or(file.control)
                .unwrap_or_else(default_control),
        )
    };
    let ring = args.write.clone().or(file.write).map(|w| {
        (
            w,
            args.file_size.or(file.file_size).unwrap_or(16),
            args.file_count.or(file.file_count).unwrap_or(4),
        )
    });
    let settings = Settings {
        interfaces,
        live,
        events: args.events.clone().or(file.events),
        syslog: !args.no_syslog && file.syslog.unwrap_or(true),
        db: Some(
            args.db
                .clone()
                .or(file.db)
                .unwrap_or_else(crate::store::default_path),
        ),
        control,
        control_group: args.control_group.clone().or(file.control_group),
        metrics: args.metrics.clone().or(file.metrics),
        home: super::home_nets(&home_net)?,
        warn_days: args.warn_days.or(file.warn_days).unwrap_or(90),
        ring,
    };
    Ok((settings, args.signatures.clone().or(file.signatures)))
}

/// `/run/iotwatch/iotwatch.sock` for root, else in the user's runtime directory.
pub fn default_control() -> PathBuf {
    if crate::store::is_root() {
        return PathBuf::from("/run/iotwatch/iotwatch.sock");
    }
    std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join("iotwatch.sock")
}

pub fn run(args: MonitorArgs) -> Result<()> {
    let (settings, signatures) = resolve(&args, config::load(args.config.as_deref())?)?;
    if let Some(dir) = &signatures {
        super::install_signatures(dir)?;
    }
    let signals = Signals::register()?;
    loop {
        let control = match &settings.db {
            Some(db) => Control::with_store(db.clone()),
            None => Control::default(),
        };
        match monitor::run(&settings, &signals, Arc::new(control))? {
            Exit::Stopped => return Ok(()),
            Exit::Reload => {
                // Signatures are read once per process: start afresh, as
                // sshd does on SIGHUP, if the new config and signatures check out.
                match reload_check(&args) {
                    Ok(()) => {
                        eprintln!("iotwatch: SIGHUP: reloading config and signatures");
                        let mut argv = std::env::args_os();
                        let exe = std::env::current_exe()?;
                        let err = std::process::Command::new(exe)
                            .arg0(argv.next().unwrap_or_default())
                            .args(argv)
                            .exec();
                        bail!("re-executing for SIGHUP: {err}");
                    }
                    Err(e) => {
                        eprintln!("iotwatch: SIGHUP ignored, keeping the running setup: {e:#}")
                    }
                }
            }
        }
    }
}

/// What a reload would read, checked before the running monitor is given up.
fn reload_check(args: &MonitorArgs) -> Result<()> {
    let (_, signatures) = resolve(args, config::load(args.config.as_deref())?)?;
    if let Some(dir) = signatures {
        crate::signatures::check::check(Some(&dir))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Every option of the command line has its key in the config file.
    #[test]
    fn every_option_can_be_set_in_the_config_file() {
        let cmd = crate::cli::Cli::command();
        let monitor = cmd.find_subcommand("monitor").unwrap();
        let mut keys = Vec::new();
        for a in monitor.get_arguments() {
            let Some(long) = a.get_long() else { continue };
            let key = match long {
                "config" | "help" => continue,
                "no-promisc" => "promisc",
                "no-syslog" => "syslog",
                "immediate-mode" => "immediate",
                // `control = ""` has no meaning; leaving the socket out is
                // for the command line only.
                "no-control" => continue,
                other => other,
            }
            .replace('-', "_");
            keys.push(key);
        }
        assert!(keys.len() >= 18, "{keys:?}");
        for k in keys {
            let value = match k.as_str() {
                "interface" | "home_net" => "[\"x\"]",
                "snaplen" | "buffer_size" | "file_size" | "file_count" | "warn_days" => "1",
                "promisc" | "syslog" | "immediate" => "true",
                _ => "\"x\"",
            };
            toml::from_str::<FileConfig>(&format!("{k} = {value}"))
                .unwrap_or_else(|e| panic!("{k}: {e}"));
        }
    }

    #[test]
    fn the_command_line_wins_over_the_file() {
        let file: FileConfig = toml::from_str(include_str!("../../contrib/config.toml")).unwrap();
        assert_eq!(file.interface.as_deref(), Some(&["br-lan".to_string()][..]));
        let args = MonitorArgs {
            interface: vec!["eth1".into()],
            warn_days: Some(7),
            no_promisc: true,
            ..MonitorArgs::default()
        };
        let file = FileConfig {
            warn_days: Some(30),
            filter: Some("tcp".into()),
            ..file
        };
        let (s, _) = resolve(&args, file).unwrap();
        assert_eq!(s.interfaces, ["eth1"]);
        assert_eq!(s.warn_days, 7);
        assert_eq!(s.live.filter.as_deref(), Some("tcp"));
        assert!(!s.live.promisc);
        assert!(s.syslog);
    }
}
