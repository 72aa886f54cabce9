//! Resolving an `~/.ssh/config` Host alias the way OpenSSH's ssh_config(5) does, for the
//! handful of settings agentssh uses: HostName, User, Port, IdentityFile, ProxyJump,
//! StrictHostKeyChecking, UserKnownHostsFile and ConnectTimeout.
//!
//! Supported: case-insensitive keywords, `Keyword value` / `Keyword=value`, quoting and
//! trailing `#` comments; first obtained value wins (IdentityFile accumulates); `Host`
//! patterns with `*`, `?` and `!negation`; `Match all`, `Match host`, `Match originalhost`,
//! `Match user` and `Match localuser` (each optionally negated with `!`); `Include` with `~`,
//! paths relative to `~/.ssh` and `*`/`?` globs, nested at most 16 deep.
//!
//! Not supported: any other `Match` criterion (`exec`, `canonical`, `final`, `localnetwork`,
//! `tagged`, ...) makes the whole `Match` line not match. Host and pattern matching is ASCII
//! case-insensitive. Unknown keywords are ignored.

use std::io::{Error, ErrorKind};
use std::path::{Component, Path, PathBuf};

use super::known_hosts::{match_pattern, match_pattern_list, wildcard_match, ListMatch};

/// The settings that apply to one alias. `None`/empty means the file does not set it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostConfig {
    /// `HostName`, with `%h` expanded to the alias.
    pub hostname: Option<String>,
    /// `User`.
    pub user: Option<String>,
    /// `Port`.
    pub port: Option<u16>,
    /// Every applicable `IdentityFile`, in order, deduplicated, with `~` and tokens expanded.
    pub identity_files: Vec<PathBuf>,
    /// `ProxyJump` as written (comma-separated hops); `ProxyJump none` gives `None`.
    pub proxy_jump: Option<String>,
    /// `StrictHostKeyChecking`, lowercased (`yes`, `no`, `accept-new`, `ask`, `off`, ...).
    pub strict_host_key_checking: Option<String>,
    /// The files of the first applicable `UserKnownHostsFile` line (as OpenSSH, later lines
    /// do not add to it), expanded. `UserKnownHostsFile none` gives `/dev/null`.
    pub user_known_hosts_files: Vec<PathBuf>,
    /// `ConnectTimeout` in seconds (`none` or `0`, meaning no timeout, give `None`).
    pub connect_timeout_secs: Option<u64>,
}

/// How deep `Include` may nest (OpenSSH's READCONF_MAX_DEPTH).
const MAX_INCLUDE_DEPTH: usize = 16;

/// Values as obtained, before token expansion. The outer `Option` of a field records
/// whether a value was obtained at all, so that a `none` still wins over later lines.
#[derive(Default)]
struct Raw {
    hostname: Option<String>,
    user: Option<String>,
    port: Option<u16>,
    identity_files: Vec<String>,
    proxy_jump: Option<Option<String>>,
    strict: Option<String>,
    known_hosts: Option<Vec<String>>,
    connect_timeout: Option<Option<u64>>,
}

/// What the parse is resolving for, and what it has obtained so far.
struct Resolver<'a> {
    alias: &'a str,
    home: &'a Path,
    local_user: &'a str,
    raw: Raw,
}

/// Parse `path` (missing file → Ok(default)) and return the settings that apply to `alias`.
///
/// `home` expands `~` and `%d` and anchors relative `Include`s (`home/.ssh`); `local_user`
/// is `%u`, and `%r` when the file sets no `User`. Tokens in IdentityFile and
/// UserKnownHostsFile: `%d %u %h %r %n %p %%` (`%h` is the HostName, else the alias; `%n` the
/// alias; `%p` the port, default 22); other `%x` are kept as written. Errors: unreadable
/// files, bad Port or ConnectTimeout values, unterminated quotes, missing arguments and
/// `Include` loops, as [`ErrorKind::InvalidData`] naming file and line.
pub fn resolve(
    path: &Path,
    alias: &str,
    home: &Path,
    local_user: &str,
) -> std::io::Result<HostConfig> {
    let mut r = Resolver {
        alias,
        home,
        local_user,
        raw: Raw::default(),
    };
    r.file(path, &mut true, false, 0)?;
    Ok(r.finish())
}

/// An [`ErrorKind::InvalidData`] error naming `path:line`.
fn bad(path: &Path, line: usize, msg: impl std::fmt::Display) -> Error {
    let msg = format!("{}:{line}: {msg}", path.display());
    Error::new(ErrorKind::InvalidData, msg)
}

impl Resolver<'_> {
    /// Applies one file (a missing one is skipped). `active` says whether the current block
    /// applies; `never_match` is set for files included from a block that does not apply
    /// (their Host/Match lines never do).
    fn file(
        &mut self,
        path: &Path,
        active: &mut bool,
        never_match: bool,
        depth: usize,
    ) -> std::io::Result<()> {
        let text = match std::fs::read(path) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        for (idx, line) in text.lines().enumerate() {
            match split_line(line) {
                Ok(Some((keyword, args))) => {
                    let at = (path, idx + 1);
                    self.line(at, &keyword, &args, active, never_match, depth)?;
                }
                Ok(None) => {}
                Err(msg) => return Err(bad(path, idx + 1, msg)),
            }
        }
        Ok(())
    }

    /// Applies one `keyword args` line found at `(path, line)`.
    fn line(
        &mut self,
        (path, lineno): (&Path, usize),
        keyword: &str,
        args: &[String],
        active: &mut bool,
        never_match: bool,
        depth: usize,
    ) -> std::io::Result<()> {
        let keyword = keyword.to_ascii_lowercase();
        let first = || -> std::io::Result<&str> {
            match args.first() {
                Some(a) if !a.is_empty() => Ok(a.as_str()),
                _ => Err(bad(path, lineno, format!("missing argument for {keyword}"))),
            }
        };
        let raw = &mut self.raw;
        match keyword.as_str() {
            "host" => {
                *active = !never_match && host_line_matches(args, self.alias);
            }
            "match" => {
                let matched = match_line_matches(self, args).map_err(|m| bad(path, lineno, m))?;
                *active = !never_match && matched;
            }
            "include" => {
                if depth >= MAX_INCLUDE_DEPTH {
                    return Err(bad(path, lineno, "too many nested Includes"));
                }
                let outer = *active;
                for arg in args {
                    for file in expand_include(self.home, arg) {
                        if !file.is_dir() {
                            self.file(&file, active, never_match || !outer, depth + 1)?;
                        }
                        // A Host/Match inside the included file does not leak out of it.
                        *active = outer;
                    }
                }
            }
            "hostname" => set_first(*active, &mut raw.hostname, first()?.to_string()),
            "user" => set_first(*active, &mut raw.user, first()?.to_string()),
            "port" => {
                let arg = first()?;
                let port = arg.parse::<u16>().ok().filter(|p| *p != 0);
                let port = port.ok_or_else(|| bad(path, lineno, format!("bad port {arg:?}")))?;
                set_first(*active, &mut raw.port, port);
            }
            "identityfile" => {
                let arg = first()?.to_string();
                if *active && !raw.identity_files.contains(&arg) {
                    raw.identity_files.push(arg);
                }
            }
            "proxyjump" => {
                let arg = first()?;
                let value = (!arg.eq_ignore_ascii_case("none")).then(|| arg.to_string());
                set_first(*active, &mut raw.proxy_jump, value);
            }
            "stricthostkeychecking" => {
                set_first(*active, &mut raw.strict, first()?.to_ascii_lowercase());
            }
            "userknownhostsfile" => {
                let files = match first()? {
                    none if args.len() == 1 && none.eq_ignore_ascii_case("none") => {
                        vec!["/dev/null".to_string()]
                    }
                    _ => args.to_vec(),
                };
                set_first(*active, &mut raw.known_hosts, files);
            }
            "connecttimeout" => {
                let arg = first()?;
                let secs = match arg.eq_ignore_ascii_case("none") {
                    true => Some(0),
                    false => parse_time(arg),
                };
                let secs = secs.ok_or_else(|| bad(path, lineno, format!("bad time {arg:?}")))?;
                set_first(
                    *active,
                    &mut raw.connect_timeout,
                    (secs != 0).then_some(secs),
                );
            }
            _ => {}
        }
        Ok(())
    }

    /// Expands HostName and the file lists into the public form.
    fn finish(self) -> HostConfig {
        let raw = self.raw;
        let hostname = raw
            .hostname
            .map(|h| expand_tokens(&h, &[('h', self.alias)]));
        let remote_host = hostname.clone().unwrap_or_else(|| self.alias.to_string());
        let remote_user = raw
            .user
            .clone()
            .unwrap_or_else(|| self.local_user.to_string());
        let home = self.home.to_string_lossy();
        let port = raw.port.unwrap_or(22).to_string();
        let tokens = [
            ('d', home.as_ref()),
            ('u', self.local_user),
            ('h', remote_host.as_str()),
            ('r', remote_user.as_str()),
            ('n', self.alias),
            ('p', port.as_str()),
        ];
        let expand = |s: &String| {
            let tilde = expand_tilde(s, self.home);
            PathBuf::from(expand_tokens(&tilde.to_string_lossy(), &tokens))
        };
        HostConfig {
            identity_files: raw.identity_files.iter().map(expand).collect(),
            user_known_hosts_files: raw
                .known_hosts
                .unwrap_or_default()
                .iter()
                .map(expand)
                .collect(),
            hostname,
            user: raw.user,
            port: raw.port,
            proxy_jump: raw.proxy_jump.flatten(),
            strict_host_key_checking: raw.strict,
            connect_timeout_secs: raw.connect_timeout.flatten(),
        }
    }
}

/// Stores `value` if the block applies and nothing was obtained before.
fn set_first<T>(active: bool, slot: &mut Option<T>, value: T) {
    if active && slot.is_none() {
        *slot = Some(value);
    }
}

/// Splits a line into keyword and arguments; `None` for blank lines and comments.
fn split_line(line: &str) -> Result<Option<(String, Vec<String>)>, String> {
    let s = line.trim();
    if s.is_empty() || s.starts_with('#') {
        return Ok(None);
    }
    let end = s
        .find(|c: char| c.is_whitespace() || c == '=')
        .unwrap_or(s.len());
    let keyword = &s[..end];
    if keyword.is_empty() {
        return Err("missing keyword".into());
    }
    let rest = s[end..].trim_start();
    let rest = rest.strip_prefix('=').unwrap_or(rest);
    Ok(Some((keyword.to_string(), split_args(rest)?)))
}

/// Splits arguments as OpenSSH's `argv_split`: whitespace-separated, `"` and `'` quoting,
/// backslash escapes for quotes, backslash and space, `#` at the start of an argument ends
/// the line.
fn split_args(s: &str) -> Result<Vec<String>, String> {
    let mut args = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        match chars.peek() {
            None | Some('#') => return Ok(args),
            Some(_) => {}
        }
        let mut arg = String::new();
        let mut quote: Option<char> = None;
        while let Some(c) = chars.next() {
            match (c, quote) {
                (c, None) if c.is_whitespace() => break,
                ('\\', q) => match chars.peek() {
                    Some(&n) if matches!(n, '\'' | '"' | '\\') || (q.is_none() && n == ' ') => {
                        arg.push(n);
                        chars.next();
                    }
                    _ => arg.push('\\'),
                },
                ('"' | '\'', None) => quote = Some(c),
                (c, Some(q)) if c == q => quote = None,
                (c, _) => arg.push(c),
            }
        }
        if quote.is_some() {
            return Err("unterminated quote".into());
        }
        args.push(arg);
    }
}

/// `Host` line: some pattern matches the alias and no `!pattern` does.
fn host_line_matches(patterns: &[String], alias: &str) -> bool {
    let mut matched = false;
    for pat in patterns {
        match pat.strip_prefix('!') {
            Some(neg) if match_pattern(alias, neg) => return false,
            Some(_) => {}
            None => matched |= match_pattern(alias, pat),
        }
    }
    matched
}

/// Evaluates a `Match` line's criteria (all must hold). Unsupported criteria make the line
/// not match; a criterion missing its argument is an error.
fn match_line_matches(r: &Resolver<'_>, args: &[String]) -> Result<bool, String> {
    if args.is_empty() {
        return Err("Match needs criteria".into());
    }
    let mut all = true;
    let mut it = args.iter();
    while let Some(criterion) = it.next() {
        let (negated, name) = match criterion.strip_prefix('!') {
            Some(rest) => (true, rest.to_ascii_lowercase()),
            None => (false, criterion.to_ascii_lowercase()),
        };
        let subject = match name.as_str() {
            "all" => {
                all &= !negated;
                continue;
            }
            "host" => match &r.raw.hostname {
                Some(h) => expand_tokens(h, &[('h', r.alias)]),
                None => r.alias.to_string(),
            },
            "originalhost" => r.alias.to_string(),
            "user" => r
                .raw
                .user
                .clone()
                .unwrap_or_else(|| r.local_user.to_string()),
            "localuser" => r.local_user.to_string(),
            _ => return Ok(false),
        };
        let Some(patterns) = it.next() else {
            return Err(format!("Match {name} needs an argument"));
        };
        let matched =
            match_pattern_list(&subject.to_ascii_lowercase(), patterns) == ListMatch::Match;
        all &= matched != negated;
    }
    Ok(all)
}

/// Parses an OpenSSH time value (`30`, `90s`, `1m30s`, `2h`, `1d`, `1w`) into seconds.
fn parse_time(s: &str) -> Option<u64> {
    let mut total: u64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let mut chars = rest.chars();
        let unit = match chars.next().map(|c| c.to_ascii_lowercase()) {
            None => 1,
            Some('s') => 1,
            Some('m') => 60,
            Some('h') => 3600,
            Some('d') => 86_400,
            Some('w') => 604_800,
            Some(_) => return None,
        };
        rest = chars.as_str();
        total = total.checked_add(n.checked_mul(unit)?)?;
    }
    (!s.is_empty()).then_some(total)
}

/// Expands `%x` tokens from `tokens` and `%%`; unknown tokens are kept as written.
fn expand_tokens(s: &str, tokens: &[(char, &str)]) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some(t) => match tokens.iter().find(|(k, _)| *k == t) {
                Some((_, v)) => out.push_str(v),
                None => {
                    out.push('%');
                    out.push(t);
                }
            },
            None => out.push('%'),
        }
    }
    out
}

/// Expands a leading `~` or `~/` to `home`.
fn expand_tilde(s: &str, home: &Path) -> PathBuf {
    match s.strip_prefix('~') {
        Some("") => home.to_path_buf(),
        Some(rest) if rest.starts_with('/') => home.join(rest.trim_start_matches('/')),
        _ => PathBuf::from(s),
    }
}

/// The files an `Include` argument names: `~` expanded, relative to `~/.ssh`, globbed and
/// sorted.
fn expand_include(home: &Path, arg: &str) -> Vec<PathBuf> {
    let path = expand_tilde(arg, home);
    let path = if path.is_absolute() {
        path
    } else {
        home.join(".ssh").join(path)
    };
    let mut found = vec![PathBuf::new()];
    for comp in path.components() {
        let part = comp.as_os_str().to_string_lossy();
        let is_glob = matches!(comp, Component::Normal(_)) && part.contains(['*', '?']);
        if !is_glob {
            found.iter_mut().for_each(|p| p.push(comp));
            continue;
        }
        let mut next = Vec::new();
        for base in &found {
            let Ok(entries) = std::fs::read_dir(base) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                // As glob(3): wildcards do not match a leading dot.
                if (!name.starts_with('.') || part.starts_with('.'))
                    && wildcard_match(&name, &part, false)
                {
                    next.push(base.join(name));
                }
            }
        }
        found = next;
    }
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake home with `~/.ssh/config` holding `config`; returns (home, config path).
    fn home_with(config: &str) -> (tempfile::TempDir, PathBuf) {
        let home = tempfile::tempdir().unwrap();
        let ssh = home.path().join(".ssh");
        std::fs::create_dir(&ssh).unwrap();
        let path = ssh.join("config");
        std::fs::write(&path, config).unwrap();
        (home, path)
    }

    fn get(config: &str, alias: &str) -> HostConfig {
        let (home, path) = home_with(config);
        resolve(&path, alias, home.path(), "me").unwrap()
    }

    #[test]
    fn alias_with_basic_settings() {
        let (home, path) = home_with(
            "# top comment\n\
             Host web\n\
             \tHostName web.example.com\n\
             \tUser deploy\n\
             \tPort 2222\n\
             \tIdentityFile ~/.ssh/id_web\n\
             \tIdentityFile %d/keys/%u-%r@%h:%p-%n%%\n\
             \tProxyJump bastion,other\n\
             \tStrictHostKeyChecking Accept-New\n\
             \tConnectTimeout 1m30s\n\
             \tSomeUnknownKeyword whatever\n",
        );
        let h = home.path().to_string_lossy().into_owned();
        let got = resolve(&path, "web", home.path(), "me").unwrap();
        let want = HostConfig {
            hostname: Some("web.example.com".into()),
            user: Some("deploy".into()),
            port: Some(2222),
            identity_files: vec![
                home.path().join(".ssh/id_web"),
                PathBuf::from(format!("{h}/keys/me-deploy@web.example.com:2222-web%")),
            ],
            proxy_jump: Some("bastion,other".into()),
            strict_host_key_checking: Some("accept-new".into()),
            user_known_hosts_files: vec![],
            connect_timeout_secs: Some(90),
        };
        assert_eq!(got, want);
        assert_eq!(
            resolve(&path, "other", home.path(), "me").unwrap(),
            HostConfig::default()
        );
    }

    #[test]
    fn first_value_wins_and_identity_files_accumulate() {
        let cfg = "Host web\n  User first\n  IdentityFile ~/a\n\
                   Host web\n  User second\n  Port 1\n  IdentityFile ~/b\n  IdentityFile ~/a\n";
        let got = get(cfg, "web");
        assert_eq!(got.user.as_deref(), Some("first"));
        assert_eq!(got.port, Some(1));
        let names: Vec<_> = got
            .identity_files
            .iter()
            .map(|p| p.file_name().unwrap())
            .collect();
        assert_eq!(names, ["a", "b"]);
    }

    #[test]
    fn wildcard_section_after_specific_and_global_lines() {
        let cfg = "ConnectTimeout 5\n\
                   Host web\n  User alice\n\
                   Host *.example.com web? *\n  User nobody\n  Port 2200\n";
        let web = get(cfg, "web");
        assert_eq!((web.user.as_deref(), web.port), (Some("alice"), Some(2200)));
        assert_eq!(web.connect_timeout_secs, Some(5));
        let db = get(cfg, "DB.example.com");
        assert_eq!((db.user.as_deref(), db.port), (Some("nobody"), Some(2200)));
    }

    #[test]
    fn negation() {
        let cfg = "Host *.corp !jump.corp\n  ProxyJump jump.corp\n\
                   Host *\n  ProxyJump none\n";
        assert_eq!(get(cfg, "db.corp").proxy_jump.as_deref(), Some("jump.corp"));
        assert_eq!(get(cfg, "jump.corp").proxy_jump, None);
        // `none` obtained first still wins over a later value.
        let cfg = "Host a\n  ProxyJump none\nHost *\n  ProxyJump hop\n";
        assert_eq!(get(cfg, "a").proxy_jump, None);
        assert_eq!(get(cfg, "b").proxy_jump.as_deref(), Some("hop"));
        // A negated pattern alone never matches.
        assert_eq!(get("Host !a\n  User x\n", "b").user, None);
    }

    #[test]
    fn include_relative_glob_tilde_and_scoping() {
        let (home, path) = home_with(
            "Include conf.d/*.conf ~/extra\n\
             Host web\n  Include scoped\n  Port 7\n\
             Host *\n  User fallback\n",
        );
        let ssh = home.path().join(".ssh");
        std::fs::create_dir(ssh.join("conf.d")).unwrap();
        std::fs::write(ssh.join("conf.d/20-b.conf"), "Host web\n  User from-b\n").unwrap();
        std::fs::write(
            ssh.join("conf.d/10-a.conf"),
            "Host web\n  HostName a.example\n",
        )
        .unwrap();
        std::fs::write(ssh.join("conf.d/.hidden.conf"), "Host web\n  User hidden\n").unwrap();
        std::fs::write(ssh.join("conf.d/x.txt"), "Host web\n  User txt\n").unwrap();
        std::fs::write(home.path().join("extra"), "Host web\n  IdentityFile ~/k\n").unwrap();
        // Included inside `Host web`: its own Host lines cannot escape that block.
        std::fs::write(
            ssh.join("scoped"),
            "ConnectTimeout 9\nHost *\n  User scoped\n",
        )
        .unwrap();
        let web = resolve(&path, "web", home.path(), "me").unwrap();
        assert_eq!(web.hostname.as_deref(), Some("a.example"));
        assert_eq!(web.user.as_deref(), Some("from-b"));
        assert_eq!(web.identity_files, vec![home.path().join("k")]);
        assert_eq!((web.connect_timeout_secs, web.port), (Some(9), Some(7)));
        let other = resolve(&path, "other", home.path(), "me").unwrap();
        assert_eq!(other.user.as_deref(), Some("fallback"));
        assert_eq!(other.connect_timeout_secs, None);
    }

    #[test]
    fn include_loop_is_an_error() {
        let (home, path) = home_with("Include config\n");
        let err = resolve(&path, "x", home.path(), "me").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidData);
        assert!(err.to_string().contains("Include"), "{err}");
        // Missing includes are fine.
        let (home, path) = home_with("Include nothing/here* none\nUser u\n");
        let got = resolve(&path, "x", home.path(), "me").unwrap();
        assert_eq!(got.user.as_deref(), Some("u"));
    }

    #[test]
    fn match_blocks() {
        let cfg = "Host db\n  HostName db.internal\n\
                   Match host *.internal\n  User internal\n\
                   Match originalhost db !host other\n  Port 2201\n\
                   Match exec \"true\"\n  IdentityFile ~/never\n\
                   Match !exec \"true\" host *\n  IdentityFile ~/never2\n\
                   Match localuser me\n  StrictHostKeyChecking no\n\
                   Match all\n  ConnectTimeout 3\n";
        let db = get(cfg, "db");
        assert_eq!(db.user.as_deref(), Some("internal"));
        assert_eq!(db.port, Some(2201));
        assert!(db.identity_files.is_empty());
        assert_eq!(db.strict_host_key_checking.as_deref(), Some("no"));
        assert_eq!(db.connect_timeout_secs, Some(3));
        let web = get(cfg, "web.internal");
        assert_eq!((web.user.as_deref(), web.port), (Some("internal"), None));
        let other = get(cfg, "other");
        assert_eq!((other.user, other.port), (None, None));
        // Match with a missing argument is an error.
        let (home, path) = home_with("Match host\n");
        assert!(resolve(&path, "x", home.path(), "me").is_err());
    }

    #[test]
    fn equals_syntax_case_and_comments() {
        let cfg = "HOST=web\nhostname=web.example\nUser = bob # trailing comment\n\
                   PORT =2022\nidentityFILE= ~/id\n";
        let got = get(cfg, "web");
        assert_eq!(got.hostname.as_deref(), Some("web.example"));
        assert_eq!(got.user.as_deref(), Some("bob"));
        assert_eq!(got.port, Some(2022));
        assert_eq!(got.identity_files.len(), 1);
    }

    #[test]
    fn quoted_paths_with_spaces() {
        let (home, path) = home_with(
            "Host web\n  IdentityFile \"~/my keys/id ed25519\"\n  IdentityFile ~/a\\ b\n\
             UserKnownHostsFile '~/kh one' ~/kh2\nUserKnownHostsFile ~/ignored\n",
        );
        let got = resolve(&path, "web", home.path(), "me").unwrap();
        let h = home.path();
        assert_eq!(
            got.identity_files,
            vec![h.join("my keys/id ed25519"), h.join("a b")]
        );
        assert_eq!(
            got.user_known_hosts_files,
            vec![h.join("kh one"), h.join("kh2")]
        );
        assert_eq!(
            split_args("a \"b c\" 'd\"e' f\\\"g #x"),
            Ok(vec![
                "a".to_string(),
                "b c".into(),
                "d\"e".into(),
                "f\"g".into()
            ])
        );
        assert!(split_args("\"open").is_err());
    }

    #[test]
    fn hostname_tokens_and_known_hosts_none() {
        let cfg = "Host *\n  HostName %h.example.com\n  UserKnownHostsFile none\n\
                   IdentityFile ~/.ssh/%h_%C\n";
        let got = get(cfg, "web");
        assert_eq!(got.hostname.as_deref(), Some("web.example.com"));
        assert_eq!(got.user_known_hosts_files, vec![PathBuf::from("/dev/null")]);
        assert!(got.identity_files[0].ends_with(".ssh/web.example.com_%C"));
    }

    #[test]
    fn bad_values_name_the_line() {
        for (cfg, line) in [
            ("Host x\n  Port 99999\n", 2),
            ("Host y\n\n  Port ssh\n", 3),
            ("Port 0\n", 1),
            ("ConnectTimeout soon\n", 1),
            ("User\n", 1),
            ("IdentityFile \"unterminated\n", 1),
        ] {
            let (home, path) = home_with(cfg);
            let err = resolve(&path, "z", home.path(), "me").unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidData, "{cfg}");
            assert!(
                err.to_string().contains(&format!("config:{line}:")),
                "{err}"
            );
        }
    }

    #[test]
    fn missing_file_is_default() {
        let home = tempfile::tempdir().unwrap();
        let path = home.path().join("no/such/config");
        assert_eq!(
            resolve(&path, "x", home.path(), "me").unwrap(),
            HostConfig::default()
        );
    }

    #[test]
    fn time_values() {
        assert_eq!(parse_time("30"), Some(30));
        assert_eq!(parse_time("2h1M5s"), Some(7265));
        assert_eq!(parse_time("1w"), Some(604_800));
        assert_eq!(parse_time(""), None);
        assert_eq!(parse_time("5x"), None);
        assert_eq!(parse_time("m"), None);
    }
}
