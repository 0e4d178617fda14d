//! `signatures/scan-ports.tsv`: ports IoT worms scan, to name what a scan aims at.

use std::sync::OnceLock;

use super::{SigError, parse_tsv};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WormPort {
    pub port: u16,
    pub family: String,
    pub source: String,
}

pub const FILE: &str = "scan-ports.tsv";
pub const BUILTIN: &str = include_str!("../../signatures/scan-ports.tsv");

pub fn parse(file: &str, text: &str) -> Result<Vec<WormPort>, SigError> {
    parse_tsv(file, text, |r| {
        let port = r.get("port")?;
        let port = port
            .parse::<u16>()
            .map_err(|_| r.error(format!("port '{port}' is not 0-65535")))?;
        if r.get("protocol")? != "tcp" {
            return Err(r.error("only tcp ports are scanned by SYN".into()));
        }
        Ok(WormPort {
            port,
            family: r.get("family")?.to_string(),
            source: r.get("source")?.to_string(),
        })
    })
}

/// The built-in table (checked by a unit test, so it always parses).
pub fn builtin() -> &'static [WormPort] {
    static PORTS: OnceLock<Vec<WormPort>> = OnceLock::new();
    PORTS.get_or_init(|| parse(FILE, BUILTIN).expect("built-in signatures/scan-ports.tsv parses"))
}

pub fn lookup(port: u16) -> Option<&'static WormPort> {
    builtin().iter().find(|w| w.port == port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_parses_with_sources() {
        let p = builtin();
        assert!(p.len() >= 10);
        assert_eq!(lookup(7547).unwrap().port, 7547);
        assert!(p.iter().all(|w| !w.source.is_empty()));
    }

    #[test]
    fn errors_name_file_and_line() {
        let e = parse(
            "x.tsv",
            "# c\nport\tprotocol\tfamily\tsource\n23\ttcp\tMirai\t\n",
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "x.tsv:3: 'source' is empty");
        let e = parse(
            "x.tsv",
            "port\tprotocol\tfamily\tsource\n99999\ttcp\tX\ty\n",
        )
        .unwrap_err();
        assert_eq!(
            (e.line, e.message.as_str()),
            (2, "port '99999' is not 0-65535")
        );
        let e = parse("x.tsv", "port\tprotocol\tfamily\n").unwrap_err();
        assert!(e.message.contains("source"));
    }
}
