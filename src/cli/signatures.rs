//! `iotwatch signatures check [DIR]` and `iotwatch signatures list KIND`.

use std::io::{self, Write};
use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};

use crate::signatures::check::{KINDS, check};
use crate::signatures::credentials::CredentialDb;
use crate::signatures::devices::DeviceRules;
use crate::signatures::support::{End, SupportDb};
use crate::signatures::vendors::VendorDb;

#[derive(Debug, Args)]
pub struct SignaturesArgs {
    #[command(subcommand)]
    pub command: SignaturesCommand,
}

#[derive(Debug, Subcommand)]
pub enum SignaturesCommand {
    /// Validate signature files (the built-in ones, or DIR laid out like
    /// signatures/): syntax, fields, patterns, duplicate ids, sources
    Check {
        /// A signatures directory (e.g. your --signatures overlay)
        dir: Option<PathBuf>,
    },
    /// Print what iotwatch knows of one kind: devices, vendors, credentials, support
    List {
        /// devices, vendors, credentials or support
        kind: String,
        /// Only entries whose vendor (or rule claims) contain this text
        #[arg(long)]
        vendor: Option<String>,
    },
}

pub fn run(args: SignaturesArgs) -> Result<()> {
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    match args.command {
        SignaturesCommand::Check { dir } => {
            if let Some(d) = &dir
                && !d.is_dir()
            {
                bail!("{}: not a directory", d.display());
            }
            let counts = check(dir.as_deref())?;
            let place = dir.map_or("built-in signatures".to_string(), |d| {
                d.display().to_string()
            });
            if counts.is_empty() {
                bail!("{place}: no signature files (expected {})", kinds_list());
            }
            writeln!(out, "{place}: ok")?;
            for (kind, n) in counts {
                writeln!(out, "  {kind:<16} {n:>6} entries")?;
            }
        }
        SignaturesCommand::List { kind, vendor } => {
            let want = |s: &str| {
                vendor
                    .as_ref()
                    .is_none_or(|v| s.to_lowercase().contains(&v.to_lowercase()))
            };
            match kind.as_str() {
                "devices" => {
                    writeln!(out, "id\tsignal\tfield\tpattern\tclaims\tweight\tsource")?;
                    for r in DeviceRules::builtin().all() {
                        let claims: Vec<String> = r
                            .claims
                            .iter()
                            .map(|(f, v)| format!("{}={v}", f.name()))
                            .collect();
                        let claims = claims.join(";");
                        if want(&claims) {
                            writeln!(
                                out,
                                "{}\t{}\t{}\t{}\t{claims}\t{}\t{}",
                                r.id, r.signal, r.field, r.pattern, r.weight, r.source
                            )?;
                        }
                    }
                }
                "vendors" => {
                    writeln!(out, "vendor\tpolicy_url\tcontact\tsupport_periods\tsource")?;
                    for v in VendorDb::builtin().all().iter().filter(|v| want(&v.name)) {
                        writeln!(
                            out,
                            "{}\t{}\t{}\t{}\t{}",
                            v.name,
                            v.policy_url.as_deref().unwrap_or("none published"),
                            v.contact.as_deref().unwrap_or("-"),
                            v.support_periods.as_deref().unwrap_or("-"),
                            v.source
                        )?;
                    }
                }
                "credentials" => {
                    writeln!(out, "username\tpassword\tprotocols\tlist\tvendor\tsource")?;
                    for c in CredentialDb::builtin()
                        .entries()
                        .iter()
                        .filter(|c| want(&c.vendor))
                    {
                        writeln!(
                            out,
                            "{}\t{}\t{}\t{}\t{}\t{}",
                            c.username,
                            c.password,
                            if c.protocols.is_empty() {
                                "any".to_string()
                            } else {
                                c.protocols.join(",")
                            },
                            c.list,
                            c.vendor,
                            c.source
                        )?;
                    }
                }
                "support" => {
                    writeln!(
                        out,
                        "id\tvendor\tproduct\tmatch\tpattern\tend\tend_kind\tsource"
                    )?;
                    for p in SupportDb::builtin()
                        .all()
                        .iter()
                        .filter(|p| want(&p.vendor))
                    {
                        let end = match &p.end {
                            End::Date(d) => d.to_string(),
                            End::Ended => "ended".into(),
                            End::PossiblyEnded => "possibly-ended".into(),
                            End::Unannounced => "unannounced".into(),
                            End::Policy => "policy".into(),
                        };
                        writeln!(
                            out,
                            "{}\t{}\t{}\t{:?}\t{}\t{end}\t{:?}\t{}",
                            p.id, p.vendor, p.product, p.matches, p.pattern, p.kind, p.source
                        )?;
                    }
                }
                other => bail!("unknown kind '{other}' (devices, vendors, credentials or support)"),
            }
        }
    }
    out.flush()?;
    Ok(())
}

fn kinds_list() -> String {
    KINDS.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
}
