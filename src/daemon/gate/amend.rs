//! The dashboard's `a` key: approve a command and allow that exact command from now on, by
//! adding an `exact:` entry to the `allow` list of the rule that asked.
//!
//! The file is edited with `toml_edit`, so the human's comments and layout survive; the
//! result must parse as a policy before it replaces the file, atomically (write to a temp
//! file, then rename), so a failed edit never leaves a half-written or broken policy.

use std::path::Path;

use crate::daemon::policy::file as policy_file;
use crate::error::{Error, ErrorCode, Result};

/// Adds `exact:COMMAND` to the allow list of rule `index` (1-based), which must still start
/// on `line` (else the file changed since the rule asked, and nothing is written).
pub fn allow_exact(path: &Path, index: usize, line: usize, command: &str) -> Result<()> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::local_io(path.display(), &e))?;
    let now = policy_file::parse(&text, path).map_err(|e| {
        Error::new(
            ErrorCode::Usage,
            format!("the policy file is broken, so no rule was added: {e}"),
        )
    })?;
    let moved = || {
        Error::usage(format!(
            "{} changed since this request was asked; approve it once (y) and edit the file by hand",
            path.display()
        ))
    };
    match now.rules.get(index.wrapping_sub(1)) {
        Some(r) if r.line == line => {}
        _ => return Err(moved()),
    }
    let mut doc: toml_edit::DocumentMut = text.parse().map_err(|_| moved())?;
    let rules = doc
        .get_mut("rule")
        .and_then(|i| i.as_array_of_tables_mut())
        .ok_or_else(moved)?;
    let rule = rules.get_mut(index - 1).ok_or_else(moved)?;
    let entry = format!("exact:{}", command.trim());
    let allow = rule
        .entry("allow")
        .or_insert(toml_edit::value(toml_edit::Array::new()));
    let list = allow.as_array_mut().ok_or_else(moved)?;
    if !list.iter().any(|v| v.as_str() == Some(entry.as_str())) {
        list.push(entry);
    }
    let out = doc.to_string();
    // What is written must be a policy this daemon accepts.
    policy_file::parse(&out, path).map_err(|e| {
        Error::internal(format!(
            "adding the allow entry would break the policy: {e}"
        ))
    })?;
    crate::fsutil::atomic_write(path, out.as_bytes(), 0o600)
        .map_err(|e| Error::local_io(path.display(), &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_an_exact_entry_keeping_comments_and_refuses_a_moved_rule() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.toml");
        let text = "# mine\n[[rule]]\ntargets = [\"prod\"] # prod only\ndefault = \"ask\"\nallow = [\"ls\"]\n";
        std::fs::write(&path, text).unwrap();
        allow_exact(&path, 1, 3, "uname; rm -rf /tmp/x").unwrap();
        let out = std::fs::read_to_string(&path).unwrap();
        assert!(
            out.contains("# mine") && out.contains("# prod only"),
            "{out}"
        );
        let p = policy_file::parse(&out, &path).unwrap();
        assert_eq!(p.rules[0].allow.len(), 2);
        assert_eq!(p.rules[0].allow[1].describe(), "exact:uname; rm -rf /tmp/x");
        // Twice: no duplicate.
        allow_exact(&path, 1, 3, "uname; rm -rf /tmp/x").unwrap();
        let p = policy_file::load(&path).unwrap().unwrap();
        assert_eq!(p.rules[0].allow.len(), 2);
        // The rule is no longer on line 3: nothing is written.
        let e = allow_exact(&path, 1, 9, "id").unwrap_err();
        assert_eq!(e.code, ErrorCode::Usage);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), out);
    }
}
