//! The policy file, `$XDG_CONFIG_HOME/agentssh/policy.toml`: parsing into typed rules, and a
//! loader that follows the file on disk.
//!
//! Parsing is strict: an unknown key, a bad decision word, an empty `targets` list or a bad
//! regex is an error naming the line, so a typo cannot silently weaken a rule. The
//! [`Loader`] checks the file's identity (mtime, size, inode) on every evaluation, so edits
//! apply without a restart; a file that turns bad keeps the last good policy and says why.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use toml::Spanned;

/// What a rule decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Run without asking.
    Allow,
    /// Wait for a human.
    Ask,
    /// Refuse.
    Deny,
}

impl Verdict {
    /// The word used in files and output.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Ask => "ask",
            Verdict::Deny => "deny",
        }
    }

    /// The stricter of two verdicts (deny > ask > allow).
    pub fn stricter(self, other: Verdict) -> Verdict {
        let rank = |v: Verdict| match v {
            Verdict::Allow => 0,
            Verdict::Ask => 1,
            Verdict::Deny => 2,
        };
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }
}

/// One entry of an `allow`/`ask`/`deny` list.
#[derive(Debug, Clone)]
pub enum Matcher {
    /// A program name: a simple command running it (for `deny`/`ask`: seen anywhere).
    Program(String),
    /// `re:…`: a regex on the whole command.
    Regex(regex::Regex),
    /// `exact:…`: exactly this command line, control syntax and all (what the dashboard's
    /// `a` key adds after a human approved that very command).
    Exact(String),
}

impl Matcher {
    /// The entry as written in the file.
    pub fn describe(&self) -> String {
        match self {
            Matcher::Program(p) => p.clone(),
            Matcher::Regex(r) => format!("re:{}", r.as_str()),
            Matcher::Exact(s) => format!("exact:{s}"),
        }
    }
}

/// One `[[rule]]`.
#[derive(Debug, Clone)]
pub struct Rule {
    /// 1-based position in the file.
    pub index: usize,
    /// The line its `targets` key is on.
    pub line: usize,
    /// Profile names or host globs (`*`, `*.example.com`).
    pub targets: Vec<String>,
    /// For commands no list names.
    pub default: Verdict,
    /// Commands run without asking.
    pub allow: Vec<Matcher>,
    /// Commands that wait for a human.
    pub ask: Vec<Matcher>,
    /// Commands refused.
    pub deny: Vec<Matcher>,
    /// Opening a connection.
    pub connect: Verdict,
    /// Reading remote files.
    pub files_read: Verdict,
    /// Writing, editing, uploading or deleting remote files.
    pub files_write: Verdict,
    /// Creating a port forward or proxy.
    pub forward: Verdict,
}

impl Rule {
    /// How output names this rule.
    pub fn label(&self) -> String {
        if self.index == 0 {
            return "ask-all (the policy file is broken and no good version was seen)".into();
        }
        format!("rule {} (line {})", self.index, self.line)
    }
}

/// A parsed policy: rules in file order. No rules means everything is allowed.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// The rules; the first whose targets match wins.
    pub rules: Vec<Rule>,
    /// Where it came from (None: no file).
    pub source: Option<PathBuf>,
}

/// Why a policy file could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct PolicyError {
    /// The file.
    pub path: String,
    /// What is wrong, naming the line where known.
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    rule: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    targets: Spanned<Vec<String>>,
    #[serde(default)]
    default: Option<Verdict>,
    #[serde(default)]
    allow: Vec<Spanned<String>>,
    #[serde(default)]
    ask: Vec<Spanned<String>>,
    #[serde(default)]
    deny: Vec<Spanned<String>>,
    connect: Option<Verdict>,
    files_read: Option<Verdict>,
    files_write: Option<Verdict>,
    forward: Option<Verdict>,
}

/// The 1-based line of byte offset `at`.
fn line_of(text: &str, at: usize) -> usize {
    text.as_bytes()[..at.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// Parses policy text; `path` only names the file in errors.
pub fn parse(text: &str, path: &Path) -> Result<Policy, PolicyError> {
    let err = |message: String| PolicyError {
        path: path.display().to_string(),
        message,
    };
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let what = e.message().trim().to_string();
        match e.span() {
            Some(s) => err(format!("line {}: {what}", line_of(text, s.start))),
            None => err(what),
        }
    })?;
    let mut rules = Vec::with_capacity(raw.rule.len());
    for (n, r) in raw.rule.into_iter().enumerate() {
        let line = line_of(text, r.targets.span().start);
        let targets = r.targets.into_inner();
        if targets.is_empty() || targets.iter().any(|t| t.trim().is_empty()) {
            return Err(err(format!(
                "line {line}: `targets` needs at least one non-empty profile name or host glob"
            )));
        }
        let list = |items: Vec<Spanned<String>>| -> Result<Vec<Matcher>, PolicyError> {
            items
                .into_iter()
                .map(|s| {
                    let at = line_of(text, s.span().start);
                    let v = s.into_inner();
                    if let Some(exact) = v.strip_prefix("exact:") {
                        if exact.trim().is_empty() {
                            return Err(err(format!("line {at}: `exact:` needs a command")));
                        }
                        Ok(Matcher::Exact(exact.trim().to_string()))
                    } else if let Some(re) = v.strip_prefix("re:") {
                        regex::Regex::new(re)
                            .map(Matcher::Regex)
                            .map_err(|e| err(format!("line {at}: bad regex `{re}`: {e}")))
                    } else if v.is_empty() || v.chars().any(char::is_whitespace) {
                        Err(err(format!(
                            "line {at}: `{v}` is not a program name (one word, or `re:` for a regex)"
                        )))
                    } else {
                        Ok(Matcher::Program(v))
                    }
                })
                .collect()
        };
        let default = r.default.unwrap_or(Verdict::Allow);
        rules.push(Rule {
            index: n + 1,
            line,
            targets,
            default,
            allow: list(r.allow)?,
            ask: list(r.ask)?,
            deny: list(r.deny)?,
            connect: r.connect.unwrap_or(default),
            files_read: r.files_read.unwrap_or(default),
            files_write: r.files_write.unwrap_or(default),
            forward: r.forward.unwrap_or(default),
        });
    }
    Ok(Policy {
        rules,
        source: Some(path.to_path_buf()),
    })
}

/// Reads and parses the file at `path`; `Ok(None)` when there is no file.
pub fn load(path: &Path) -> Result<Option<Policy>, PolicyError> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, path).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(PolicyError {
            path: path.display().to_string(),
            message: format!("cannot read: {e}"),
        }),
    }
}

/// The policy file's default path.
pub fn default_path() -> crate::error::Result<PathBuf> {
    Ok(crate::config::config_dir()?.join("policy.toml"))
}

/// What identifies one version of the file on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp(Option<(SystemTime, u64, u64)>);

fn stamp(path: &Path) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    Stamp(std::fs::metadata(path).ok().map(|m| {
        (
            m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            m.len(),
            m.ino(),
        )
    }))
}

/// The policy in force and, when the file on disk is broken, why it is not the file's.
#[derive(Debug, Clone)]
pub struct Current {
    /// The policy to evaluate against.
    pub policy: Arc<Policy>,
    /// Why the file on disk is not in force (shown in the log and the dashboard).
    pub error: Option<PolicyError>,
}

struct LoaderState {
    stamp: Option<Stamp>,
    current: Current,
}

/// Follows the policy file: reloads when it changes, keeps the last good policy when the
/// file turns bad. A file that is broken before any good one was seen gives a policy that
/// asks for everything: failing open would ignore rules the user meant to set.
pub struct Loader {
    path: PathBuf,
    state: Mutex<LoaderState>,
}

impl Loader {
    /// A loader for `path` (nothing is read until [`Loader::current`]).
    pub fn new(path: PathBuf) -> Loader {
        Loader {
            path,
            state: Mutex::new(LoaderState {
                stamp: None,
                current: Current {
                    policy: Arc::new(Policy::default()),
                    error: None,
                },
            }),
        }
    }

    /// The file this loader follows.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The policy in force, re-reading the file if it changed since the last call.
    pub fn current(&self) -> Current {
        let now = stamp(&self.path);
        let mut st = match self.state.lock() {
            Ok(g) => g,
            // A panic elsewhere cannot leave the state half-written: it is replaced whole.
            Err(p) => p.into_inner(),
        };
        if st.stamp.as_ref() != Some(&now) {
            let first = st.stamp.is_none();
            st.stamp = Some(now);
            match load(&self.path) {
                Ok(Some(p)) => {
                    st.current = Current {
                        policy: Arc::new(p),
                        error: None,
                    }
                }
                Ok(None) => {
                    st.current = Current {
                        policy: Arc::new(Policy::default()),
                        error: None,
                    }
                }
                Err(e) => {
                    tracing::warn!("policy file is broken, keeping the previous policy: {e}");
                    if first {
                        st.current.policy = Arc::new(Policy::ask_all(&self.path));
                    }
                    st.current.error = Some(e);
                }
            }
        }
        st.current.clone()
    }
}

impl Policy {
    /// One rule asking for everything everywhere (a broken file with no good one before it).
    pub fn ask_all(path: &Path) -> Policy {
        Policy {
            rules: vec![Rule {
                index: 0,
                line: 0,
                targets: vec!["*".into()],
                default: Verdict::Ask,
                allow: Vec::new(),
                ask: Vec::new(),
                deny: Vec::new(),
                connect: Verdict::Ask,
                files_read: Verdict::Ask,
                files_write: Verdict::Ask,
                forward: Verdict::Ask,
            }],
            source: Some(path.to_path_buf()),
        }
    }
}
