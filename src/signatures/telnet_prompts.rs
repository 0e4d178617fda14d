//! `signatures/telnet-prompts.tsv`: the words around a telnet login.

use std::sync::OnceLock;

use super::{SigError, parse_tsv};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Prompts {
    pub login: Vec<String>,
    pub password: Vec<String>,
    pub failure: Vec<String>,
    pub success: Vec<String>,
}

pub const FILE: &str = "telnet-prompts.tsv";
pub const BUILTIN: &str = include_str!("../../signatures/telnet-prompts.tsv");

pub fn parse(file: &str, text: &str) -> Result<Prompts, SigError> {
    let mut p = Prompts::default();
    let rows = parse_tsv(file, text, |r| {
        Ok((
            r.get("kind")?.to_string(),
            r.get("text")?.to_ascii_lowercase(),
            r.line,
        ))
    })?;
    for (kind, text, line) in rows {
        let list = match kind.as_str() {
            "login" => &mut p.login,
            "password" => &mut p.password,
            "failure" => &mut p.failure,
            "success" => &mut p.success,
            other => {
                return Err(SigError {
                    file: file.into(),
                    line,
                    message: format!("kind '{other}' is not login, password, failure or success"),
                });
            }
        };
        list.push(text);
    }
    Ok(p)
}

pub fn builtin() -> &'static Prompts {
    static P: OnceLock<Prompts> = OnceLock::new();
    P.get_or_init(|| parse(FILE, BUILTIN).expect("built-in signatures/telnet-prompts.tsv parses"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_and_errors() {
        let p = builtin();
        assert!(p.login.contains(&"login:".to_string()));
        assert!(p.password.contains(&"passwort:".to_string()));
        let e = parse("p.tsv", "kind\ttext\tsource\nprompt\tx:\ty\n").unwrap_err();
        assert_eq!(e.line, 2);
    }
}
