//! `signatures/credentials/*.tsv`: default credentials (Mirai's dictionary and
//! vendor defaults), each with the protocols it applies to and its source.

use std::path::Path;
use std::sync::OnceLock;

use rustc_hash::FxHashMap;

use super::{SigError, parse_tsv};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credential {
    pub username: String,
    pub password: String,
    /// Protocols it applies to; empty means any.
    pub protocols: Vec<String>,
    /// `mirai` or `vendor`.
    pub list: String,
    pub vendor: String,
    pub source: String,
}

impl Credential {
    fn applies_to(&self, protocol: &str) -> bool {
        // `http-basic`, `rtsp-digest` … match the `http`, `rtsp` of the lists.
        let base = protocol.split('-').next().unwrap_or(protocol);
        self.protocols.is_empty() || self.protocols.iter().any(|p| p == base)
    }

    /// The name reported as `credential_source`.
    pub fn label(&self) -> String {
        if self.list == "mirai" {
            "mirai".into()
        } else {
            format!("vendor: {}", self.vendor)
        }
    }
}

pub struct CredentialDb {
    entries: Vec<Credential>,
    by_pair: FxHashMap<(String, String), Vec<u32>>,
    by_user: FxHashMap<String, Vec<u32>>,
}

pub const BUILTIN: &[(&str, &str)] = &[
    (
        "credentials/mirai.tsv",
        include_str!("../../signatures/credentials/mirai.tsv"),
    ),
    (
        "credentials/vendor.tsv",
        include_str!("../../signatures/credentials/vendor.tsv"),
    ),
];

static DB: OnceLock<CredentialDb> = OnceLock::new();

fn builtin_entries() -> Vec<Credential> {
    let mut all = Vec::new();
    for (file, text) in BUILTIN {
        all.extend(parse(file, text).expect("built-in credential lists parse"));
    }
    all
}

pub fn parse(file: &str, text: &str) -> Result<Vec<Credential>, SigError> {
    parse_tsv(file, text, |r| {
        let protocols = match r.get("protocols")? {
            "any" => Vec::new(),
            p => p.split(',').map(|x| x.trim().to_string()).collect(),
        };
        Ok(Credential {
            username: r.get_or_empty("username")?.to_string(),
            password: r.get_or_empty("password")?.to_string(),
            protocols,
            list: r.get("list")?.to_string(),
            vendor: r.get_or_empty("vendor")?.to_string(),
            source: r.get("source")?.to_string(),
        })
    })
}

impl CredentialDb {
    pub fn new(entries: Vec<Credential>) -> CredentialDb {
        let mut by_pair: FxHashMap<(String, String), Vec<u32>> = FxHashMap::default();
        let mut by_user: FxHashMap<String, Vec<u32>> = FxHashMap::default();
        for (i, c) in entries.iter().enumerate() {
            by_pair
                .entry((c.username.clone(), c.password.clone()))
                .or_default()
                .push(i as u32);
            by_user
                .entry(c.username.clone())
                .or_default()
                .push(i as u32);
        }
        CredentialDb {
            entries,
            by_pair,
            by_user,
        }
    }

    /// The lists in use: the built-in ones, plus a user's overlay once
    /// [`CredentialDb::install_overlay`] ran (before any analysis).
    pub fn builtin() -> &'static CredentialDb {
        DB.get_or_init(|| CredentialDb::new(builtin_entries()))
    }

    /// Adds the lists of `DIR/credentials/*.tsv` to the built-in ones for
    /// this process. Call once, before analysing; an error names file:line.
    pub fn install_overlay(dir: &Path) -> Result<usize, SigError> {
        let mut extra = Vec::new();
        for (name, text) in super::overlay_files(dir, "credentials")? {
            extra.extend(parse(&name, &text)?);
        }
        let n = extra.len();
        let mut all = builtin_entries();
        all.extend(extra);
        if DB.set(CredentialDb::new(all)).is_err() {
            return Err(SigError {
                file: dir.join("credentials").display().to_string(),
                line: 0,
                message: "credential lists were already in use".into(),
            });
        }
        Ok(n)
    }

    /// The list entry a login matches, Mirai's list first.
    pub fn lookup(&self, protocol: &str, username: &str, password: &str) -> Option<&Credential> {
        let ids = self
            .by_pair
            .get(&(username.to_string(), password.to_string()))?;
        let mut hits = ids
            .iter()
            .map(|&i| &self.entries[i as usize])
            .filter(|c| c.applies_to(protocol));
        let first = hits.next()?;
        Some(hits.find(|c| c.list == "mirai").unwrap_or(first))
    }

    /// Default passwords known for a username on a protocol (for Digest, where
    /// only a hash of the password crosses the wire).
    pub fn passwords_for<'a>(
        &'a self,
        protocol: &'a str,
        username: &str,
    ) -> impl Iterator<Item = &'a Credential> + 'a {
        self.by_user
            .get(username)
            .into_iter()
            .flatten()
            .map(|&i| &self.entries[i as usize])
            .filter(move |c| c.applies_to(protocol))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn entries(&self) -> &[Credential] {
        &self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_lists() {
        let db = CredentialDb::builtin();
        assert!(db.len() > 400);
        let c = db.lookup("telnet", "root", "xc3511").unwrap();
        assert_eq!(c.label(), "mirai");
        assert!(c.source.contains("scanner.c:124"));
        // Empty passwords are real entries.
        assert!(db.lookup("telnet", "root", "").is_some());
        assert!(db.lookup("snmp", "", "public").is_some());
        // Scoped by protocol: Zyxel's hard-coded FTP account is an FTP default only.
        assert!(db.lookup("ftp", "devicehaecived", "1234").is_some());
        assert!(db.lookup("telnet", "devicehaecived", "1234").is_none());
        assert!(db.lookup("telnet", "root", "correct horse").is_none());
        assert!(db.passwords_for("http-digest", "admin").count() > 5);
    }
}
