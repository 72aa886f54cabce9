//! Connection flags given before the subcommand (`agentssh -p prod --json exec -- uptime`).
//!
//! The connection flags live in per-command structs that clap flattens into each command
//! (deferred, so that only the typed command's arguments get built), where `global = true`
//! cannot reach them. Instead, when argv starts with one of those flags, [`hoist`] moves the
//! leading flags to just after the subcommand path, found by walking clap's command tree to
//! a leaf. Anything the leaf does not accept then fails there as a normal usage error.
//! An argv that does not start with such a flag is returned untouched, at no cost.

use std::ffi::{OsStr, OsString};

use clap::CommandFactory;

use super::args::Cli;

/// Flags that may come before the subcommand and take a value, short and long.
const VALUE_FLAGS: [(&str, &str); 5] = [
    ("-p", "--profile"),
    ("-H", "--host"),
    ("-P", "--port"),
    ("-u", "--username"),
    ("-s", "--session-id"),
];

/// The other connection flags (long only) that take a value: an agent that writes the
/// target before the subcommand writes its key and auth flags there too.
const LONG_VALUE_FLAGS: [&str; 9] = [
    "--private-key-path",
    "--private-key-env",
    "--passphrase-env",
    "--password-env",
    "--password",
    "--passphrase",
    "--ready-timeout-ms",
    "--strict-host-key-checking",
    "--proxy-jump",
];

/// How many words the flag at the start of `words` spans, if it is one we move: 1 for
/// `-pNAME`, `--profile=NAME`, `--json`, `--output=F`; 2 for `-p NAME`, `--output F`.
fn flag_words(words: &[OsString]) -> Option<usize> {
    let w = words.first()?.to_str()?;
    let has_value = words.len() > 1;
    if w == "--json" || w.starts_with("--output=") {
        return Some(1);
    }
    if w == "--output" {
        return has_value.then_some(2);
    }
    for long in LONG_VALUE_FLAGS {
        if w == long {
            return has_value.then_some(2);
        }
        if w.starts_with(&format!("{long}=")) {
            return Some(1);
        }
    }
    for (short, long) in VALUE_FLAGS {
        if w == short || w == long {
            return has_value.then_some(2);
        }
        let attached = w.strip_prefix(short).is_some_and(|v| !v.is_empty());
        if attached || w.starts_with(&format!("{long}=")) {
            return Some(1);
        }
    }
    None
}

/// `--json` / `--output`: global flags clap already takes before the subcommand.
fn is_output_flag(word: &OsStr) -> bool {
    word.to_str()
        .is_some_and(|w| w == "--json" || w == "--output" || w.starts_with("--output="))
}

/// The leaf subcommand path at the start of `words` (its length), if the words name one.
fn leaf_path(words: &[OsString]) -> Option<usize> {
    let mut cmd = Cli::command();
    for (i, word) in words.iter().enumerate() {
        let mut sub = cmd.find_subcommand(word.to_str()?)?.clone();
        // Subcommands are deferred: building this one (only) reveals its children.
        sub.build();
        if !sub.has_subcommands() {
            return Some(i + 1);
        }
        cmd = sub;
    }
    None
}

/// `argv` with leading connection flags (and `--json`/`--output` among them) moved after the
/// subcommand path; unchanged when it does not start with a connection flag, or when the
/// words after the flags do not name a leaf command (clap then reports the problem).
pub fn hoist(argv: Vec<OsString>) -> Vec<OsString> {
    let mut end = 1;
    let mut conn_flag = false;
    while end < argv.len() {
        let Some(n) = flag_words(&argv[end..]) else {
            break;
        };
        conn_flag |= !is_output_flag(&argv[end]);
        end += n;
    }
    if !conn_flag {
        return argv;
    }
    let rest = &argv[end..];
    if rest
        .first()
        .is_some_and(|w| w.as_os_str() == OsStr::new("--"))
    {
        return argv;
    }
    let Some(path) = leaf_path(rest) else {
        return argv;
    };
    let mut out = Vec::with_capacity(argv.len());
    out.extend_from_slice(&argv[..1]);
    out.extend_from_slice(&rest[..path]);
    out.extend_from_slice(&argv[1..end]);
    out.extend_from_slice(&rest[path..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(words: &str) -> String {
        let argv = std::iter::once("agentssh")
            .chain(words.split(' '))
            .map(OsString::from)
            .collect();
        let out: Vec<String> = hoist(argv)
            .into_iter()
            .skip(1)
            .map(|w| w.to_string_lossy().into_owned())
            .collect();
        out.join(" ")
    }

    #[test]
    fn leading_flags_move_after_the_leaf_command() {
        assert_eq!(
            run("-p prod --json exec -- uptime"),
            "exec -p prod --json -- uptime"
        );
        assert_eq!(
            run("-s s1 --output json session read --limit 5"),
            "session read -s s1 --output json --limit 5"
        );
        assert_eq!(
            run("-H h -P 2222 -u root --output=json file ls --remote /"),
            "file ls -H h -P 2222 -u root --output=json --remote /"
        );
        assert_eq!(
            run("-pprod --host=h --json proxy create --socks5 1"),
            "proxy create -pprod --host=h --json --socks5 1"
        );
        assert_eq!(run("--json -u me exec x"), "exec --json -u me x");
        assert_eq!(
            run("-H h -u me --private-key-path /k --strict-host-key-checking=yes exec x"),
            "exec -H h -u me --private-key-path /k --strict-host-key-checking=yes x"
        );
    }

    #[test]
    fn anything_else_is_left_for_clap() {
        for same in [
            "exec -p prod -- true",
            "--json exec -p prod -- true",
            "-p prod",
            "-p prod --json",
            "-p prod --timeout 5 exec -- true",
            "-p prod file",
            "-p prod nosuch ls",
            "-p",
            "-p prod -- exec",
            "--json --output json",
            "--output json exec -p x",
        ] {
            assert_eq!(run(same), same);
        }
    }
}
