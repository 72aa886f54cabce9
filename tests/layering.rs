//! The house holds: the contract and the shared types are leaves, and the faces do not import
//! each other (see README "Design").
//!
//! Reads the source files with `std::fs` and collects, for each one, the crate-root modules it
//! names: every `crate::m…` path (in `use` lines, multi-line `use crate::{…}` groups and inline
//! paths) and every `super::` chain that climbs to the crate root. Comments and string literals
//! are skipped. The
//! rules below list which modules a file (or every file under a directory) may not name.
//!
//! `LAYERING_SRC` points the check at another `src` directory (e.g. an old checkout's), to show
//! that it fails there.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Modules below the faces and the daemon must not name.
const IMPLEMENTATION: &[&str] = &["daemon", "ssh", "sftp", "cli", "tui"];

/// (file or directory under `src`, modules it may not name).
const RULES: &[(&str, &[&str])] = &[
    // The only contract between faces and daemon: serde, std, `error` and the wire types.
    ("protocol.rs", IMPLEMENTATION),
    // The faces' side of the socket.
    ("client.rs", IMPLEMENTATION),
    // The types the wire carries.
    ("wire", IMPLEMENTATION),
    // Paths, used by client and daemon alike.
    ("config.rs", IMPLEMENTATION),
    // What both faces share sits below both.
    ("target.rs", &["cli", "tui", "daemon"]),
    ("panic_cleanup.rs", &["cli", "tui", "daemon"]),
    // One face does not import another.
    ("tui", &["cli"]),
    // The MCP face talks to the daemon through `client` and `protocol` only, like the CLI.
    ("mcp", &["cli", "tui", "daemon"]),
];

/// Blanks out comments (doc comments included), string and char literals, keeping line
/// structure, so only code is searched.
fn strip_comments(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    // Skips to just past `end`, keeping the newlines on the way.
    let skip_to = |i: &mut usize, out: &mut String, end: &str| {
        let end: Vec<char> = end.chars().collect();
        while *i < c.len() {
            if c[*i..].starts_with(&end) {
                *i += end.len();
                return;
            }
            if c[*i] == '\\' && end == ['"'] {
                *i += 1;
            } else if c[*i] == '\n' {
                out.push('\n');
            }
            *i += 1;
        }
    };
    while i < c.len() {
        let prev_ident = i > 0 && is_ident(c[i - 1]);
        match c[i] {
            '/' if c.get(i + 1) == Some(&'/') => {
                while i < c.len() && c[i] != '\n' {
                    i += 1;
                }
            }
            '/' if c.get(i + 1) == Some(&'*') => {
                i += 2;
                skip_to(&mut i, &mut out, "*/");
            }
            '"' => {
                i += 1;
                skip_to(&mut i, &mut out, "\"");
            }
            'r' if !prev_ident && matches!(c.get(i + 1), Some('"' | '#')) => {
                let hashes = c[i + 1..].iter().take_while(|h| **h == '#').count();
                if c.get(i + 1 + hashes) == Some(&'"') {
                    i += 2 + hashes;
                    skip_to(&mut i, &mut out, &format!("\"{}", "#".repeat(hashes)));
                } else {
                    out.push('r');
                    i += 1;
                }
            }
            // A char literal ('x', '\n', '\u{..}'); otherwise a lifetime.
            '\'' if c.get(i + 1) == Some(&'\\') => {
                i += 3;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
            }
            '\'' if c.get(i + 2) == Some(&'\'') => i += 3,
            ch => {
                out.push(ch);
                i += 1;
            }
        }
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The first segment of each path at the start of `rest` (a single path, or the items of a
/// `{…}` group, nested groups included only for their first segment).
fn first_segments(rest: &str, out: &mut BTreeSet<String>) {
    let rest = rest.trim_start();
    if let Some(group) = rest.strip_prefix('{') {
        // Split the group's top level at commas, up to its closing brace.
        let mut depth = 0usize;
        let mut item_start = 0usize;
        for (i, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    first_segments(&group[item_start..i], out);
                    return;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    first_segments(&group[item_start..i], out);
                    item_start = i + 1;
                }
                _ => {}
            }
        }
        return;
    }
    let name: String = rest.chars().take_while(|c| is_ident(*c)).collect();
    if !name.is_empty() && name != "self" {
        out.insert(name);
    }
}

/// The crate-root modules `text` names. `depth` is how many modules deep the file is
/// (`src/protocol.rs`: 1, `src/tui/app.rs`: 2), so `super::` chains that reach the root
/// count too.
fn crate_modules(text: &str, depth: usize) -> BTreeSet<String> {
    let code = strip_comments(text);
    let mut found = BTreeSet::new();
    let bytes = code.as_bytes();
    for (start, _) in code.match_indices("crate::") {
        if start > 0 && is_ident(char::from(bytes[start - 1])) {
            continue;
        }
        first_segments(&code[start + "crate::".len()..], &mut found);
    }
    if depth > 0 {
        let climb = "super::".repeat(depth);
        for (start, _) in code.match_indices(&climb) {
            let before_ok = start == 0 || !is_ident(char::from(bytes[start - 1]));
            let rest = &code[start + climb.len()..];
            // One `super::` more is not the root but above it; cannot happen in valid code.
            if before_ok && !rest.starts_with("super::") && !code[..start].ends_with("super::") {
                first_segments(rest, &mut found);
            }
        }
    }
    found
}

/// How many modules deep `file` (relative to `src`) is.
fn module_depth(rel: &Path) -> usize {
    let parts = rel.components().count();
    let file = rel.file_name().and_then(|f| f.to_str()).unwrap_or("");
    if file == "mod.rs" || file == "lib.rs" || file == "main.rs" {
        parts - 1
    } else {
        parts
    }
}

/// Every `.rs` file at or under `path`.
fn rust_files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .unwrap_or_else(|e| panic!("cannot list {}: {e}", path.display()))
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            rust_files(&p, out);
        }
    } else if path.is_file() && path.extension().is_some_and(|e| e == "rs") {
        out.push(path.to_path_buf());
    }
}

/// The rule violations in the tree at `src`, one line each.
fn violations(src: &Path) -> Vec<String> {
    let mut bad = Vec::new();
    for (target, forbidden) in RULES {
        let mut files = Vec::new();
        rust_files(&src.join(target), &mut files);
        if files.is_empty() {
            bad.push(format!("{target}: no such file or directory under src"));
        }
        for file in files {
            let text = std::fs::read_to_string(&file)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
            let rel = file.strip_prefix(src).unwrap();
            for m in crate_modules(&text, module_depth(rel)) {
                if forbidden.contains(&m.as_str()) {
                    bad.push(format!("src/{} names crate::{m}", rel.display()));
                }
            }
        }
    }
    bad
}

#[test]
fn layers_hold() {
    let src = std::env::var_os("LAYERING_SRC")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    let bad = violations(&src);
    assert!(
        bad.is_empty(),
        "layering broken in {}:\n{}",
        src.display(),
        bad.join("\n")
    );
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn finds_use_lines_groups_and_inline_paths() {
    // What protocol.rs and tui/mod.rs said before the layering was fixed.
    let old_protocol = "use crate::error::Error;\nuse crate::ssh::spec::ConnectSpec;\n\
        enum R {\n    File(Box<crate::sftp::FileRequest>),\n}\n";
    assert_eq!(
        crate_modules(old_protocol, 1),
        set(&["error", "ssh", "sftp"])
    );
    let old_tui = "fn f() {\n    crate::cli::output::set_panic_cleanup(None);\n    \
        let spec = crate::cli::target::resolve(&args)?;\n}\n";
    assert_eq!(crate_modules(old_tui, 1), set(&["cli"]));
    let group =
        "use crate::{\n    client::DaemonClient,\n    daemon::{self, Paths},\n    self,\n};\n";
    assert_eq!(crate_modules(group, 1), set(&["client", "daemon"]));
}

#[test]
fn follows_super_to_the_root_and_skips_comments() {
    let text = "use super::app::App;\nuse super::super::cli::args;\n";
    // From src/tui/app.rs (depth 2) `super::super::cli` is `crate::cli`; `super::app` is not.
    assert_eq!(crate_modules(text, 2), set(&["cli"]));
    // From src/tui/mod.rs (depth 1) `super::app` is the crate's `app`.
    assert_eq!(crate_modules("use super::app::App;\n", 1), set(&["app"]));
    let comments = "//! See crate::cli.\n/* crate::daemon */ let s = \"// crate::tui\";\n\
        /// [`crate::ssh`]\nuse crate::error::Error; // crate::sftp\n\
        let q = '\"'; let r = r#\"crate::x\"#; fn f<'a>(_: &'a str) { crate::fsutil::f() }\n";
    assert_eq!(crate_modules(comments, 1), set(&["error", "fsutil"]));
    assert!(crate_modules("macro_rules! m { () => { $crate::x::y } }", 1).contains("x"));
    assert!(crate_modules("let notcrate::x = 1;", 1).is_empty());
}

#[test]
fn depth_counts_mod_rs_as_its_directory() {
    assert_eq!(module_depth(Path::new("protocol.rs")), 1);
    assert_eq!(module_depth(Path::new("tui/mod.rs")), 1);
    assert_eq!(module_depth(Path::new("tui/app.rs")), 2);
    assert_eq!(module_depth(Path::new("lib.rs")), 0);
}
