//! Remote path handling: making paths absolute (`~` and relative paths start at the remote
//! home), lexical normalisation, the `delete` safety rules, temp-file names and shell quoting
//! for the exec backend.
//!
//! Remote paths are POSIX strings. Normalisation is lexical (`a/./b/../c` is `a/c`), like
//! `realpath -s`: it never follows symlinks, so `delete` removes a symlink, never its target.

use crate::error::{Error, Result};

/// Whether `raw` needs the remote home directory to become absolute.
pub fn needs_home(raw: &str) -> bool {
    !raw.starts_with('/')
}

/// Makes `raw` absolute and normalised. `~` and `~/x` start at `home`, as do relative paths
/// (both SFTP and exec start in the home directory). An empty path is a usage error.
pub fn absolute(raw: &str, home: &str) -> Result<String> {
    if raw.is_empty() {
        return Err(Error::usage("the remote path is empty"));
    }
    let joined = if raw == "~" {
        home.to_string()
    } else if let Some(rest) = raw.strip_prefix("~/") {
        format!("{home}/{rest}")
    } else if raw.starts_with('/') {
        raw.to_string()
    } else {
        format!("{home}/{raw}")
    };
    Ok(normalise(&joined))
}

/// Lexically normalises an absolute path: collapses `//`, drops `.`, applies `..` (never
/// above `/`) and removes a trailing slash. The result starts with `/`.
pub fn normalise(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Refuses a `delete` target that is `/`, the home directory or one of its ancestors,
/// whichever way it was spelt (`''`, `~`, `.`, `/tmp/..`, `~/x/..`, `/home`). `resolved` is the server's canonical form of the
/// path (symlinks followed) when it could be had; it is checked too.
pub fn check_delete(raw: &str, abs: &str, home: &str, resolved: Option<&str>) -> Result<()> {
    if raw.trim().is_empty() {
        return Err(Error::usage("refusing to delete an empty path"));
    }
    let home = normalise(home);
    for p in std::iter::once(abs).chain(resolved) {
        let p = normalise(p);
        if p == "/" {
            return Err(Error::usage(format!(
                "refusing to delete '{raw}': it resolves to the root directory /"
            )));
        }
        if p == home {
            return Err(Error::usage(format!(
                "refusing to delete '{raw}': it resolves to the home directory {home}"
            )));
        }
        if home.starts_with(&format!("{p}/")) {
            return Err(Error::usage(format!(
                "refusing to delete '{raw}': {p} contains the home directory {home}"
            )));
        }
    }
    Ok(())
}

/// The parent directory of an absolute, normalised path (`/` for `/x`).
pub fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// The last component of a path (`""` for `/`).
pub fn file_name(path: &str) -> &str {
    path.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default()
}

/// `dir` + `/` + `rel` (for a relative `rel` such as `a/b`).
pub fn join(dir: &str, rel: &str) -> String {
    if rel.is_empty() {
        dir.to_string()
    } else if dir.is_empty() {
        rel.to_string()
    } else if dir.ends_with('/') {
        format!("{dir}{rel}")
    } else {
        format!("{dir}/{rel}")
    }
}

/// A hidden temp name beside `target` (same directory, so the final rename is atomic):
/// `.NAME.agentssh-XXXXXXXX.tmp`, with NAME shortened so the result fits in 255 bytes.
pub fn temp_beside(target: &str) -> String {
    let dir = parent(target);
    let mut name = file_name(target).to_string();
    if name.len() > 200 {
        let mut cut = 200;
        while !name.is_char_boundary(cut) {
            cut -= 1;
        }
        name.truncate(cut);
    }
    join(
        dir,
        &format!(".{name}.agentssh-{:08x}.tmp", rand::random::<u32>()),
    )
}

/// Whether `name` looks like one of our temp files.
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(".tmp") && name.contains(".agentssh-")
}

/// Quotes `s` for a POSIX shell: `'...'` with embedded quotes as `'\''`. Newlines and every
/// other byte pass through unchanged inside the quotes.
pub fn sh_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_paths_start_at_home_and_are_normalised() {
        let home = "/home/u";
        assert_eq!(absolute("~", home).unwrap(), "/home/u");
        assert_eq!(absolute("~/a/./b/", home).unwrap(), "/home/u/a/b");
        assert_eq!(absolute("x/../y", home).unwrap(), "/home/u/y");
        assert_eq!(absolute("/tmp/..", home).unwrap(), "/");
        assert_eq!(absolute("//a//b/../../..", home).unwrap(), "/");
        assert_eq!(absolute(".", home).unwrap(), "/home/u");
        assert!(absolute("", home).is_err());
        assert_eq!(absolute("~user/x", home).unwrap(), "/home/u/~user/x");
    }

    #[test]
    fn delete_refuses_root_and_home_however_spelt() {
        let home = "/home/u";
        for raw in ["/", "/tmp/..", "~", ".", "~/x/..", "//", "/../..", "x/.."] {
            let abs = absolute(raw, home).unwrap();
            let err = check_delete(raw, &abs, home, None).unwrap_err();
            assert_eq!(err.code, crate::error::ErrorCode::Usage, "{raw}");
        }
        assert!(check_delete("", "/", home, None).is_err());
        assert!(check_delete("  ", "/", home, None).is_err());
        assert!(check_delete("/tmp/x", "/tmp/x", home, Some("/")).is_err());
        assert!(check_delete("/tmp/x", "/tmp/x", home, Some("/home/u/")).is_err());
        assert!(check_delete("/tmp/x", "/tmp/x", home, Some("/tmp/x")).is_ok());
        assert!(check_delete("~/x", "/home/u/x", home, None).is_ok());
        assert!(check_delete("/home", "/home", home, None).is_err());
        assert!(check_delete("/home/u2", "/home/u2", home, None).is_ok());
    }

    #[test]
    fn names_and_quoting() {
        assert_eq!(parent("/a/b"), "/a");
        assert_eq!(parent("/a"), "/");
        assert_eq!(file_name("/a/b c"), "b c");
        assert_eq!(join("/", "x"), "/x");
        assert_eq!(join("/a", "b/c"), "/a/b/c");
        assert_eq!(join("", "b"), "b");
        let t = temp_beside("/d/file name");
        assert!(t.starts_with("/d/.file name.agentssh-"), "{t}");
        assert!(is_temp_name(file_name(&t)));
        let long = "é".repeat(200);
        assert!(file_name(&temp_beside(&format!("/d/{long}"))).len() <= 255);
        assert_eq!(sh_quote("a'b\nc"), "'a'\\''b\nc'");
    }
}
