//! `signatures/scan-thresholds.tsv`: the scan detector's thresholds as data.

use std::sync::OnceLock;

use super::{SigError, parse_tsv};

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScanThresholds {
    pub mirai_matches: usize,
    pub trw_theta0: f64,
    pub trw_theta1: f64,
    pub trw_alpha: f64,
    pub trw_beta: f64,
    pub min_targets: u64,
    pub min_ports: u64,
    pub port_concentration: f64,
    pub odd_probes: u64,
    pub sweep_targets: u64,
}

pub const FILE: &str = "scan-thresholds.tsv";
pub const BUILTIN: &str = include_str!("../../signatures/scan-thresholds.tsv");

pub fn parse(file: &str, text: &str) -> Result<ScanThresholds, SigError> {
    let rows = parse_tsv(file, text, |r| {
        let value = r.get("value")?;
        let v: f64 = value
            .parse()
            .map_err(|_| r.error(format!("value '{value}' is not a number")))?;
        if !v.is_finite() || v < 0.0 {
            return Err(r.error(format!("value '{value}' must be a non-negative number")));
        }
        Ok((r.get("name")?.to_string(), v, r.line))
    })?;
    let get = |name: &str| -> Result<f64, SigError> {
        rows.iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, v, _)| *v)
            .ok_or_else(|| SigError {
                file: file.into(),
                line: 0,
                message: format!("threshold '{name}' is missing"),
            })
    };
    if let Some((n, _, line)) = rows.iter().find(|(n, _, _)| {
        ![
            "mirai_matches",
            "trw_theta0",
            "trw_theta1",
            "trw_alpha",
            "trw_beta",
            "min_targets",
            "min_ports",
            "port_concentration",
            "odd_probes",
            "sweep_targets",
        ]
        .contains(&n.as_str())
    }) {
        return Err(SigError {
            file: file.into(),
            line: *line,
            message: format!("unknown threshold '{n}'"),
        });
    }
    let t = ScanThresholds {
        mirai_matches: get("mirai_matches")?.max(1.0) as usize,
        trw_theta0: get("trw_theta0")?,
        trw_theta1: get("trw_theta1")?,
        trw_alpha: get("trw_alpha")?,
        trw_beta: get("trw_beta")?,
        min_targets: get("min_targets")? as u64,
        min_ports: get("min_ports")? as u64,
        port_concentration: get("port_concentration")?,
        odd_probes: get("odd_probes")?.max(1.0) as u64,
        sweep_targets: get("sweep_targets")? as u64,
    };
    let probabilities = [
        t.trw_theta0,
        t.trw_theta1,
        t.trw_alpha,
        t.trw_beta,
        t.port_concentration,
    ];
    if probabilities.iter().any(|p| !(0.0..=1.0).contains(p)) || t.trw_theta1 >= t.trw_theta0 {
        return Err(SigError {
            file: file.into(),
            line: 0,
            message: "probabilities must be within 0-1, and trw_theta1 below trw_theta0".into(),
        });
    }
    Ok(t)
}

pub fn builtin() -> &'static ScanThresholds {
    static T: OnceLock<ScanThresholds> = OnceLock::new();
    T.get_or_init(|| parse(FILE, BUILTIN).expect("built-in signatures/scan-thresholds.tsv parses"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_and_errors() {
        assert_eq!(builtin().mirai_matches, 3);
        let bad = "name\tvalue\tsource\nmirai_match\t3\tx\n";
        let e = parse("t.tsv", bad).unwrap_err();
        assert_eq!(
            (e.line, e.message.as_str()),
            (2, "unknown threshold 'mirai_match'")
        );
        let e = parse("t.tsv", "name\tvalue\tsource\nmin_ports\tmany\tx\n").unwrap_err();
        assert!(e.message.contains("not a number"));
    }
}
