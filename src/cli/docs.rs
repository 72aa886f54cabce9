//! `completions` and `man`: the shell completion scripts (clap_complete) and the man page
//! (clap_mangen), both generated from the one clap definition so they never drift. Also
//! [`command_words`], which reads an `agentssh …` line of an example or a doc the way a shell
//! would, so tests can check every documented command against the real parser.

use std::io::Write;

use clap::{CommandFactory, ValueEnum};
use serde_json::json;

use super::args::Cli;
use super::{output, Reply};
use crate::error::{Error, Result};

/// Shells we print completions for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompletionShell {
    /// GNU bash.
    Bash,
    /// Z shell.
    Zsh,
    /// fish.
    Fish,
}

/// Prints `text` as is in text mode (a closed pipe, e.g. `| head`, is not an error), or
/// returns `data` for the JSON envelope.
fn deliver(text: String, data: serde_json::Value) -> Reply {
    if output::json_mode() {
        return Reply::ok(data, String::new());
    }
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|_| out.flush());
    Reply::streamed(0)
}

/// The completion script for `shell` (under --json: `{shell, script}`).
pub fn completions(shell: CompletionShell) -> Reply {
    let generator = match shell {
        CompletionShell::Bash => clap_complete::Shell::Bash,
        CompletionShell::Zsh => clap_complete::Shell::Zsh,
        CompletionShell::Fish => clap_complete::Shell::Fish,
    };
    let mut out = Vec::new();
    clap_complete::generate(generator, &mut Cli::command(), "agentssh", &mut out);
    let script = String::from_utf8_lossy(&out).into_owned();
    let name = format!("{shell:?}").to_lowercase();
    deliver(script.clone(), json!({"shell": name, "script": script}))
}

/// The man page in roff (under --json: `{roff}`): the top-level page, then one section per
/// command with its full `--help` (options and examples).
pub fn man() -> Result<Reply> {
    let mut cmd = Cli::command();
    cmd.build();
    let page = clap_mangen::Man::new(cmd.clone());
    let mut out = Vec::new();
    let io = |e: std::io::Error| Error::internal(format!("cannot render the man page: {e}"));
    page.render_title(&mut out).map_err(io)?;
    page.render_name_section(&mut out).map_err(io)?;
    page.render_synopsis_section(&mut out).map_err(io)?;
    page.render_description_section(&mut out).map_err(io)?;
    page.render_options_section(&mut out).map_err(io)?;
    for (path, sub) in leaves(&cmd, "agentssh") {
        let mut sub = sub.clone().bin_name(path.clone());
        let help = sub.render_long_help().to_string();
        out.extend_from_slice(format!(".SH \"{}\"\n.nf\n", path.to_uppercase()).as_bytes());
        for line in help.lines() {
            out.extend_from_slice(roff_line(line).as_bytes());
            out.push(b'\n');
        }
        out.extend_from_slice(b".fi\n");
    }
    page.render_extra_section(&mut out).map_err(io)?;
    let roff = String::from_utf8_lossy(&out).into_owned();
    Ok(deliver(roff.clone(), json!({"roff": roff})))
}

/// One line of literal text, safe in roff: backslashes escaped, no leading control character.
fn roff_line(line: &str) -> String {
    let escaped = line.replace('\\', "\\e");
    if escaped.starts_with('.') || escaped.starts_with('\'') {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

/// Every command without subcommands below `cmd`, with its full name (`agentssh session send`).
pub fn leaves<'a>(cmd: &'a clap::Command, prefix: &str) -> Vec<(String, &'a clap::Command)> {
    let mut out = Vec::new();
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let path = format!("{prefix} {}", sub.get_name());
        if sub.has_subcommands() {
            out.extend(leaves(sub, &path));
        } else {
            out.push((path, sub));
        }
    }
    out
}

/// The words of the `agentssh …` command in a shell line, as the shell would pass them
/// (quotes, `$'…'` escapes; `$VAR` and `$(…)` stay as placeholders), up to the first
/// unquoted `|`, `;`, `&`, `)`, `>`, `<`, or `#` starting a word. None if the line runs no
/// `agentssh`.
pub fn command_words(line: &str) -> Option<Vec<String>> {
    let start = line.match_indices("agentssh").map(|(i, _)| i).find(|&i| {
        let before = line[..i].trim_end();
        let after = &line[i + "agentssh".len()..];
        // At the start, after a separator, or after `env` / `VAR=value` prefixes.
        let last = before.rsplit([' ', '\t']).next().unwrap_or("");
        (before.is_empty()
            || before.ends_with(['|', '(', ';', '&', '$', '`'])
            || before.ends_with("--")
            || last == "env"
            || (last.contains('=') && !last.contains(['\'', '"'])))
            && (after.is_empty() || after.starts_with([' ', '\t']))
    })?;
    let mut words = Vec::new();
    let mut cur: Option<String> = None;
    let mut chars = line[start..].chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => words.extend(cur.take()),
            '|' | ';' | '&' | ')' | '>' | '<' => break,
            '#' if cur.is_none() => break,
            '\'' => {
                let w = cur.get_or_insert_with(String::new);
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    w.push(q);
                }
            }
            '"' => {
                let w = cur.get_or_insert_with(String::new);
                while let Some(q) = chars.next() {
                    match q {
                        '"' => break,
                        '\\' => w.extend(chars.next()),
                        _ => w.push(q),
                    }
                }
            }
            '$' if chars.peek() == Some(&'\'') => {
                chars.next();
                let w = cur.get_or_insert_with(String::new);
                while let Some(q) = chars.next() {
                    match (q, chars.peek().copied()) {
                        ('\'', _) => break,
                        ('\\', Some('n')) => {
                            chars.next();
                            w.push('\n');
                        }
                        ('\\', Some('t')) => {
                            chars.next();
                            w.push('\t');
                        }
                        ('\\', Some(e)) => {
                            chars.next();
                            w.push(e);
                        }
                        _ => w.push(q),
                    }
                }
            }
            '$' if chars.peek() == Some(&'(') => {
                let mut depth = 0;
                for q in chars.by_ref() {
                    depth += match q {
                        '(' => 1,
                        ')' => -1,
                        _ => 0,
                    };
                    if depth == 0 {
                        break;
                    }
                }
                cur.get_or_insert_with(String::new).push_str("SUBST");
            }
            '\\' => cur.get_or_insert_with(String::new).extend(chars.next()),
            _ => cur.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(cur);
    Some(words)
}

/// Whether `words` (an `agentssh …` command) parses with the real CLI; `--help` and
/// `--version` count as parsing.
pub fn parses(words: &[String]) -> std::result::Result<(), String> {
    use clap::error::ErrorKind;
    match <Cli as clap::Parser>::try_parse_from(words) {
        Ok(_) => Ok(()),
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => Ok(()),
        Err(e) => Err(e.render().to_string()),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn command_words_reads_shell_lines() {
        let w =
            command_words(r#"S=$(agentssh --json connect -p prod --name work | jq -r .data.id)"#)
                .unwrap();
        assert_eq!(
            w,
            ["agentssh", "--json", "connect", "-p", "prod", "--name", "work"]
        );
        let w = command_words(
            r#"agentssh --json session send -s "$S" --input $'make\n' --wait-idle 1000  # slow"#,
        )
        .unwrap();
        assert_eq!(
            w[4..],
            ["-s", "$S", "--input", "make\n", "--wait-idle", "1000"]
        );
        let w = command_words("printf 'a\\nb\\n' | agentssh exec -p prod -- wc -l").unwrap();
        assert_eq!(w, ["agentssh", "exec", "-p", "prod", "--", "wc", "-l"]);
        assert!(command_words("cargo install agentssh-extras").is_none());
        let w =
            command_words("env HOME=/tmp/x XDG_CONFIG_HOME=/tmp/y agentssh --json session list");
        assert_eq!(w.unwrap(), ["agentssh", "--json", "session", "list"]);
        let w = command_words("source <(agentssh completions bash)").unwrap();
        assert_eq!(w, ["agentssh", "completions", "bash"]);
    }

    /// Every leaf command's --help ends with examples, and every example parses.
    #[test]
    fn every_leaf_command_has_examples_that_parse() {
        let mut cmd = Cli::command();
        cmd.build();
        let all = leaves(&cmd, "agentssh");
        assert!(all.len() > 40, "only {} leaf commands", all.len());
        for (path, sub) in all {
            let after = sub
                .get_after_help()
                .map(|h| h.to_string())
                .unwrap_or_else(|| panic!("`{path}` has no examples (after_help)"));
            assert!(after.starts_with("Example"), "`{path}`: {after}");
            let examples: Vec<Vec<String>> =
                after.lines().skip(1).filter_map(command_words).collect();
            assert!(
                !examples.is_empty(),
                "`{path}` shows no agentssh example: {after}"
            );
            assert!(
                examples
                    .iter()
                    .any(|w| w.join(" ").contains(path.trim_start_matches("agentssh "))),
                "`{path}`: no example runs this command: {after}"
            );
            for words in examples {
                if let Err(e) = parses(&words) {
                    panic!("`{path}` example {words:?} does not parse: {e}");
                }
            }
        }
    }
}
