//! Signature files: plain, human-editable tables shipped in `signatures/`
//! and compiled into the binary as text, parsed at start by the same code
//! that will read a user's overlay directory. Every row names its source; an
//! error names the file, line and field.

pub mod check;
pub mod credentials;
pub mod devices;
pub mod oui;
pub mod pattern;
pub mod scan_ports;
pub mod scan_thresholds;
pub mod scanner_tools;
pub mod support;
pub mod telnet_prompts;
pub mod vendors;

use std::fmt;

/// A signature file that does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct SigError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for SigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

/// One data row of a TSV signature file, with its line number.
pub struct Row<'a, 'h> {
    pub line: usize,
    fields: &'h [&'a str],
    header: &'h [&'a str],
    file: &'h str,
}

impl<'a> Row<'a, '_> {
    /// The value of a column; a missing or empty required column is an error.
    pub fn get(&self, column: &str) -> Result<&'a str, SigError> {
        self.get_at(self.column(column)?)
    }

    /// The value of the `i`-th column, as [`Row::get`] gives it.
    fn get_at(&self, i: usize) -> Result<&'a str, SigError> {
        match self.fields.get(i).map(|s| s.trim()) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => {
                let column = self.header.get(i).copied().unwrap_or_default();
                Err(self.error(format!("'{column}' is empty")))
            }
        }
    }

    /// The number of a column.
    pub fn column(&self, column: &str) -> Result<usize, SigError> {
        self.header
            .iter()
            .position(|h| *h == column)
            .ok_or_else(|| self.error(format!("no column '{column}'")))
    }

    /// Where the row starts in `text`, the table it was split from.
    pub fn start_in(&self, text: &str) -> u32 {
        let first = self.fields.first().map_or(text.as_ptr(), |f| f.as_ptr());
        (first as usize - text.as_ptr() as usize) as u32
    }

    /// The value of a column that may be empty (an empty password).
    pub fn get_or_empty(&self, column: &str) -> Result<&'a str, SigError> {
        let i = self.column(column)?;
        Ok(self.fields.get(i).copied().unwrap_or(""))
    }

    pub fn error(&self, message: String) -> SigError {
        SigError {
            file: self.file.to_string(),
            line: self.line,
            message,
        }
    }
}

/// Splits a TSV signature file: `#` comments and blank lines are skipped, the
/// first other line names the columns, and every row must have a `source`.
pub fn parse_tsv<'a, T>(
    file: &'a str,
    text: &'a str,
    mut row: impl FnMut(&Row<'a, '_>) -> Result<T, SigError>,
) -> Result<Vec<T>, SigError> {
    let mut header: Option<(Vec<&'a str>, usize)> = None;
    let mut out = Vec::new();
    // One buffer for every row's fields: the OUI table has 46,000 rows.
    let mut fields: Vec<&'a str> = Vec::new();
    for (i, l) in lines(text).enumerate() {
        if l.starts_with('#') || l.trim().is_empty() {
            continue;
        }
        split_fields(l, &mut fields);
        let Some((h, source)) = &header else {
            let Some(source) = fields.iter().position(|f| *f == "source") else {
                return Err(SigError {
                    file: file.into(),
                    line: i + 1,
                    message: "the header needs a 'source' column".into(),
                });
            };
            header = Some((fields.clone(), source));
            continue;
        };
        let r = Row {
            line: i + 1,
            fields: &fields,
            header: h,
            file,
        };
        if r.fields.len() != h.len() {
            return Err(r.error(format!(
                "{} fields, the header has {}",
                r.fields.len(),
                h.len()
            )));
        }
        r.get_at(*source)?;
        out.push(row(&r)?);
    }
    Ok(out)
}

/// The lines of `text` as `str::lines` gives them (a `\r` before a `\n`
/// dropped), found with `memchr`: `lines` and `split` search char by char,
/// which was a third of the 11-13 ms the OUI table took to load (7 ms now).
fn lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let Some(end) = memchr::memchr(b'\n', rest.as_bytes()) else {
            return Some(std::mem::take(&mut rest));
        };
        let line = &rest[..end];
        rest = &rest[end + 1..];
        Some(line.strip_suffix('\r').unwrap_or(line))
    })
}

/// Splits a line at its tabs into `fields`.
fn split_fields<'a>(line: &'a str, fields: &mut Vec<&'a str>) {
    fields.clear();
    let mut from = 0;
    for at in memchr::memchr_iter(b'\t', line.as_bytes()) {
        fields.push(&line[from..at]);
        from = at + 1;
    }
    fields.push(&line[from..]);
}

/// The `*.tsv` files of `DIR/sub`, sorted, read whole: `(name, text)`. A
/// missing subdirectory is no files; an unreadable file is an error.
pub fn overlay_files(dir: &std::path::Path, sub: &str) -> Result<Vec<(String, String)>, SigError> {
    let sub = dir.join(sub);
    let mut paths: Vec<_> = std::fs::read_dir(&sub)
        .map(|rd| rd.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    paths.retain(|p| p.extension().is_some_and(|e| e == "tsv"));
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let name = p.display().to_string();
            std::fs::read_to_string(&p)
                .map(|text| (name.clone(), text))
                .map_err(|e| SigError {
                    file: name,
                    line: 0,
                    message: e.to_string(),
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_fields_split_as_str_does() {
        for text in [
            "",
            "\n",
            "a",
            "a\n",
            "a\r\nb\r\n\r\n",
            "a\tb\n\tc\t\n\n#x\ty\r\nlast\t",
            "é\tñ\r\n\t\u{a0}\t\n",
            "\r",
            "a\r\r\n",
        ] {
            let ours: Vec<&str> = lines(text).collect();
            assert_eq!(ours, text.lines().collect::<Vec<_>>(), "{text:?}");
            let mut fields = Vec::new();
            for l in ours {
                split_fields(l, &mut fields);
                assert_eq!(fields, l.split('\t').collect::<Vec<_>>(), "{l:?}");
            }
        }
    }

    #[test]
    fn rows_need_a_source() {
        let no_column = parse_tsv("t.tsv", "# c\na\tb\n1\t2\n", |_| Ok(())).unwrap_err();
        assert_eq!(
            no_column.to_string(),
            "t.tsv:2: the header needs a 'source' column"
        );
        let empty = parse_tsv("t.tsv", "a\tsource\r\n1\tx\r\n2\t \r\n", |_| Ok(())).unwrap_err();
        assert_eq!(empty.to_string(), "t.tsv:3: 'source' is empty");
        let rows = parse_tsv("t.tsv", "a\tsource\n\n1\tx\n2\ty", |r| r.get("a")).unwrap();
        assert_eq!(rows, ["1", "2"]);
    }
}
