//! `signatures/scanner-tools.tsv`: User-Agents scanning tools send by default.

use std::sync::OnceLock;

use super::{SigError, parse_tsv};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScannerTool {
    /// Lower-case substring of the User-Agent.
    pub pattern: String,
    pub tool: String,
    pub source: String,
}

pub const FILE: &str = "scanner-tools.tsv";
pub const BUILTIN: &str = include_str!("../../signatures/scanner-tools.tsv");

pub fn parse(file: &str, text: &str) -> Result<Vec<ScannerTool>, SigError> {
    parse_tsv(file, text, |r| {
        Ok(ScannerTool {
            pattern: r.get("pattern")?.to_ascii_lowercase(),
            tool: r.get("tool")?.to_string(),
            source: r.get("source")?.to_string(),
        })
    })
}

pub fn builtin() -> &'static [ScannerTool] {
    static TOOLS: OnceLock<Vec<ScannerTool>> = OnceLock::new();
    TOOLS
        .get_or_init(|| parse(FILE, BUILTIN).expect("built-in signatures/scanner-tools.tsv parses"))
}

/// The tool whose User-Agent this is, if any.
pub fn by_user_agent(ua: &[u8]) -> Option<&'static ScannerTool> {
    let ua = String::from_utf8_lossy(ua).to_ascii_lowercase();
    builtin().iter().find(|t| ua.contains(&t.pattern))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nmap_user_agent() {
        let ua = b"Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)";
        assert_eq!(by_user_agent(ua).unwrap().tool, "nmap");
        assert!(by_user_agent(b"Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0").is_none());
    }
}
