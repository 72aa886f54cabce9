//! `completions` and `man`: the shell completion scripts (clap_complete) and the man page
//! (clap_mangen), both generated from the one clap definition so they never drift.

use clap::{CommandFactory, ValueEnum};
use serde_json::json;

use super::args::Cli;
use super::Reply;
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
    Reply::ok(json!({"shell": name, "script": script}), script.trim_end())
}

/// The man page in roff (under --json: `{roff}`).
pub fn man() -> Result<Reply> {
    let mut cmd = Cli::command();
    cmd.build();
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut out)
        .map_err(|e| Error::internal(format!("cannot render the man page: {e}")))?;
    let roff = String::from_utf8_lossy(&out).into_owned();
    Ok(Reply::ok(json!({"roff": roff}), roff.trim_end()))
}
