//! The regular expressions of signature rows: case-insensitive, ASCII
//! classes, matched against protocol text as bytes.
//!
//! Built with `regex-automata`'s meta engine rather than through `regex`,
//! which offers no way to leave out the literal prefilter. Building that
//! prefilter (every case variant of a pattern's literals, then an
//! Aho-Corasick automaton over them) was two thirds of the 18 ms it took to
//! compile the device rules at start; the values the rules read are a few
//! dozen bytes, which the lazy DFA scans as fast without one.

use regex_automata::meta::{Builder, Config, Regex};
use regex_automata::util::syntax;

/// Limit on a compiled pattern's size: a typo such as `\w{1000}{1000}` is an
/// error, not a gigabyte.
const SIZE_LIMIT: usize = 1 << 20;

/// The compiled pattern, or why it does not compile.
pub fn compile(pattern: &str) -> Result<Regex, String> {
    Builder::new()
        .configure(
            Config::new()
                .auto_prefilter(false)
                .nfa_size_limit(Some(SIZE_LIMIT))
                .utf8_empty(false),
        )
        // ASCII classes (\w, \d): the Unicode tables would cost megabytes
        // per rule, and the values matched are ASCII protocol text.
        .syntax(
            syntax::Config::new()
                .case_insensitive(true)
                .unicode(false)
                .utf8(false),
        )
        .build(pattern)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_insensitive_ascii_bytes() {
        let r = compile(r"^android-dhcp-(\d+)").unwrap();
        assert!(r.is_match("Android-DHCP-14".as_bytes()));
        assert!(!r.is_match("xandroid-dhcp-14".as_bytes()));
        // Not UTF-8, still searched.
        assert!(compile("cam").unwrap().is_match(&b"\xffIPCAM"[..]));
        // ASCII classes: \w does not match a non-ASCII letter.
        assert!(!compile(r"^\w$").unwrap().is_match("é".as_bytes()));
    }

    #[test]
    fn bad_patterns_are_errors() {
        assert!(compile("(").is_err());
        assert!(compile(r"\w{1000}{1000}").is_err());
    }
}
