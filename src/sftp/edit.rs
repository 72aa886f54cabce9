//! The pure part of `file edit`: literal or regex find/replace over bytes, first match or
//! all, with the replacement count. Works on any bytes (regex over `regex::bytes`), so a
//! file that is not UTF-8 can still be edited.

use crate::error::{Error, Result};

/// What to replace.
#[derive(Debug, Clone)]
pub struct Edit<'a> {
    /// Literal text, or a regex with `regex`.
    pub find: &'a str,
    /// Replacement; with `regex`, `$1`/`${name}` expand capture groups.
    pub replace: &'a str,
    /// Treat `find` as a regular expression.
    pub regex: bool,
    /// Replace every match instead of the first.
    pub all: bool,
}

/// Applies `edit` to `text`: the new text and how many replacements were made.
pub fn apply(text: &[u8], edit: &Edit<'_>) -> Result<(Vec<u8>, usize)> {
    if edit.find.is_empty() {
        return Err(Error::usage("--find must not be empty"));
    }
    let limit = if edit.all { 0 } else { 1 };
    if edit.regex {
        let re = regex::bytes::Regex::new(edit.find)
            .map_err(|e| Error::usage(format!("invalid --find regex: {e}")))?;
        let count = re.find_iter(text).take(limit_or_max(limit)).count();
        if count == 0 {
            return Ok((text.to_vec(), 0));
        }
        let out = re.replacen(text, limit, edit.replace.as_bytes());
        return Ok((out.into_owned(), count));
    }
    let find = edit.find.as_bytes();
    let mut out = Vec::with_capacity(text.len());
    let mut count = 0;
    let mut rest = text;
    while let Some(i) = find_bytes(rest, find) {
        out.extend_from_slice(&rest[..i]);
        out.extend_from_slice(edit.replace.as_bytes());
        rest = &rest[i + find.len()..];
        count += 1;
        if !edit.all {
            break;
        }
    }
    out.extend_from_slice(rest);
    Ok((out, count))
}

fn limit_or_max(limit: usize) -> usize {
    if limit == 0 {
        usize::MAX
    } else {
        limit
    }
}

fn find_bytes(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.len() > hay.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str, find: &str, replace: &str, regex: bool, all: bool) -> (String, usize) {
        let e = Edit {
            find,
            replace,
            regex,
            all,
        };
        let (out, n) = apply(text.as_bytes(), &e).unwrap();
        (String::from_utf8(out).unwrap(), n)
    }

    #[test]
    fn literal_first_and_all() {
        assert_eq!(
            run("a.b a.b", "a.b", "X", false, false),
            ("X a.b".into(), 1)
        );
        assert_eq!(run("a.b a.b", "a.b", "X", false, true), ("X X".into(), 2));
        assert_eq!(run("axb", "a.b", "X", false, true), ("axb".into(), 0));
        // A literal replacement is not expanded.
        assert_eq!(run("k=1", "k", "$0$1", false, false), ("$0$1=1".into(), 1));
    }

    #[test]
    fn regex_first_all_and_groups() {
        let cfg = "host=a\nport=8080\nport=9\n";
        assert_eq!(
            run(cfg, r"port=\d+", "port=1", true, false),
            ("host=a\nport=1\nport=9\n".into(), 1)
        );
        assert_eq!(
            run(cfg, r"port=(\d+)", "p=${1}0", true, true),
            ("host=a\np=80800\np=90\n".into(), 2)
        );
        assert_eq!(run(cfg, r"nope\d", "x", true, true).1, 0);
    }

    #[test]
    fn bad_input_is_a_usage_error() {
        let e = Edit {
            find: "(",
            replace: "",
            regex: true,
            all: false,
        };
        assert_eq!(
            apply(b"x", &e).unwrap_err().code,
            crate::error::ErrorCode::Usage
        );
        let e = Edit {
            find: "",
            replace: "",
            regex: false,
            all: false,
        };
        assert!(apply(b"x", &e).is_err());
    }

    #[test]
    fn binary_text_is_fine() {
        let e = Edit {
            find: "b",
            replace: "c",
            regex: false,
            all: true,
        };
        let (out, n) = apply(&[0xff, b'b', 0x00, b'b'], &e).unwrap();
        assert_eq!((out, n), (vec![0xff, b'c', 0x00, b'c'], 2));
    }
}
