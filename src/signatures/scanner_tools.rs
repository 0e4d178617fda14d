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
        let pattern = r.get("pattern")?;
        if !pattern.is_ascii() {
            return Err(r.error(format!("pattern {pattern:?} is not ASCII")));
        }
        Ok(ScannerTool {
            pattern: pattern.to_ascii_lowercase(),
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
    // Lower-cased on the stack: this runs for every HTTP request with a
    // User-Agent. The patterns are ASCII (checked as they load), so bytes
    // that are not UTF-8 can match no part of one, as in the text they
    // would decode to.
    let mut buf = [0u8; 512];
    let mut long = Vec::new();
    let lower = match buf.get_mut(..ua.len()) {
        Some(b) => b,
        None => {
            long.extend_from_slice(ua);
            &mut long[..]
        }
    };
    lower.copy_from_slice(ua);
    lower.make_ascii_lowercase();
    let lower = &*lower;
    builtin()
        .iter()
        .find(|t| memchr::memmem::find(lower, t.pattern.as_bytes()).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nmap_user_agent() {
        let ua = b"Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)";
        assert_eq!(by_user_agent(ua).unwrap().tool, "nmap");
        assert!(by_user_agent(b"Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0").is_none());
        // Any case, past bytes that are not UTF-8, and longer than the
        // stack buffer.
        assert_eq!(
            by_user_agent(b"\xff\xfeNMAP scripting ENGINE")
                .unwrap()
                .tool,
            "nmap"
        );
        let mut long = vec![b'x'; 2000];
        long.extend_from_slice(b"Nmap Scripting Engine");
        assert_eq!(by_user_agent(&long).unwrap().tool, "nmap");
    }

    #[test]
    fn patterns_must_be_ascii() {
        let text = "pattern\ttool\tsource\nn\u{e4}p\tx\thttps://example.org\n";
        let e = parse("t.tsv", text).unwrap_err().to_string();
        assert!(e.contains("not ASCII"), "{e}");
    }
}
