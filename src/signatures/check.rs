//! `iotwatch signatures check`: every kind of signature file, where it lives
//! (in `signatures/` or a user's overlay directory of the same layout), and
//! the parser that validates it.

use std::path::Path;

use rustc_hash::FxHashSet;

use super::{
    SigError, credentials, devices, oui, scan_ports, scan_thresholds, scanner_tools, support,
    telnet_prompts, vendors,
};

/// Files of one kind: `(name, text)`.
pub type Files = Vec<(String, String)>;

pub struct Kind {
    pub name: &'static str,
    /// A file (`oui.tsv`) or a directory of `*.tsv` files (`devices`).
    pub place: Place,
    /// Validates all the files of the kind together; the number of entries.
    pub check: fn(&Files) -> Result<usize, SigError>,
    pub builtin: fn() -> Files,
}

#[derive(Clone, Copy)]
pub enum Place {
    File(&'static str),
    Dir(&'static str),
}

fn owned(v: &[(&str, &str)]) -> Files {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn each<T>(
    files: &Files,
    parse: fn(&str, &str) -> Result<T, SigError>,
) -> Result<Vec<T>, SigError> {
    files.iter().map(|(f, t)| parse(f, t)).collect()
}

pub const KINDS: &[Kind] = &[
    Kind {
        name: "credentials",
        place: Place::Dir("credentials"),
        check: |f| Ok(each(f, credentials::parse)?.iter().map(Vec::len).sum()),
        builtin: || owned(credentials::BUILTIN),
    },
    Kind {
        name: "devices",
        place: Place::Dir("devices"),
        check: |f| {
            let rules: Vec<_> = each(f, devices::parse)?.into_iter().flatten().collect();
            let n = rules.len();
            devices::DeviceRules::new(rules)?;
            Ok(n)
        },
        builtin: || owned(devices::BUILTIN),
    },
    Kind {
        name: "vendors",
        place: Place::Dir("vendors"),
        check: |f| {
            let mut seen = FxHashSet::default();
            let mut n = 0;
            for (file, text) in f {
                for v in vendors::parse(file, text)? {
                    if !seen.insert(v.name.to_lowercase()) {
                        return Err(SigError {
                            file: file.clone(),
                            line: 0,
                            message: format!("vendor '{}' is listed twice", v.name),
                        });
                    }
                    n += 1;
                }
            }
            Ok(n)
        },
        builtin: || owned(vendors::BUILTIN),
    },
    Kind {
        name: "support",
        place: Place::Dir("support"),
        check: |f| {
            let periods: Vec<_> = each(f, support::parse)?.into_iter().flatten().collect();
            support::validate(&periods)?;
            Ok(periods.len())
        },
        builtin: || owned(support::BUILTIN),
    },
    Kind {
        name: "oui",
        place: Place::File("oui.tsv"),
        check: |f| {
            let mut n = 0;
            for (file, text) in f {
                n += oui::OuiDb::parse(file, text)?.len();
            }
            Ok(n)
        },
        builtin: || owned(&[("oui.tsv", oui::BUILTIN)]),
    },
    Kind {
        name: "scan-ports",
        place: Place::File("scan-ports.tsv"),
        check: |f| Ok(each(f, scan_ports::parse)?.iter().map(Vec::len).sum()),
        builtin: || owned(&[("scan-ports.tsv", scan_ports::BUILTIN)]),
    },
    Kind {
        name: "scan-thresholds",
        place: Place::File("scan-thresholds.tsv"),
        check: |f| Ok(each(f, scan_thresholds::parse)?.len()),
        builtin: || owned(&[("scan-thresholds.tsv", scan_thresholds::BUILTIN)]),
    },
    Kind {
        name: "scanner-tools",
        place: Place::File("scanner-tools.tsv"),
        check: |f| Ok(each(f, scanner_tools::parse)?.iter().map(Vec::len).sum()),
        builtin: || owned(&[("scanner-tools.tsv", scanner_tools::BUILTIN)]),
    },
    Kind {
        name: "telnet-prompts",
        place: Place::File("telnet-prompts.tsv"),
        check: |f| Ok(each(f, telnet_prompts::parse)?.len()),
        builtin: || owned(&[("telnet-prompts.tsv", telnet_prompts::BUILTIN)]),
    },
];

/// The files of a kind in `dir` (none when absent).
pub fn files_in(dir: &Path, place: Place) -> Result<Files, SigError> {
    match place {
        Place::Dir(sub) => super::overlay_files(dir, sub),
        Place::File(name) => {
            let p = dir.join(name);
            if !p.exists() {
                return Ok(Vec::new());
            }
            let file = p.display().to_string();
            std::fs::read_to_string(&p)
                .map(|t| vec![(file.clone(), t)])
                .map_err(|e| SigError {
                    file,
                    line: 0,
                    message: e.to_string(),
                })
        }
    }
}

/// Checks the built-in signatures, or those of `dir`: `(kind, entries)`
/// for each kind present, or the first error.
pub fn check(dir: Option<&Path>) -> Result<Vec<(&'static str, usize)>, SigError> {
    let mut counts = Vec::new();
    for k in KINDS {
        let files = match dir {
            Some(d) => files_in(d, k.place)?,
            None => (k.builtin)(),
        };
        if files.is_empty() {
            continue;
        }
        counts.push((k.name, (k.check)(&files)?));
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_signatures_check() {
        let counts = check(None).unwrap();
        assert_eq!(counts.len(), KINDS.len());
        assert!(counts.iter().all(|(_, n)| *n > 0), "{counts:?}");
    }

    #[test]
    fn a_bad_overlay_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("devices")).unwrap();
        std::fs::write(
            dir.path().join("devices/mine.tsv"),
            "id\tsignal\tfield\tpattern\tclaims\tweight\tsource\nx\tdhcp\thostname\t([\tvendor=X\t0.5\tme\n",
        )
        .unwrap();
        let e = check(Some(dir.path())).err().unwrap();
        assert!(e.file.ends_with("devices/mine.tsv"));
        assert_eq!(e.line, 2);
    }
}
