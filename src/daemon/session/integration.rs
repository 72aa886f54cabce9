//! Installing shell integration: prompt and command marks (OSC 133, see [`super::marks`]) in
//! the session's shell, so its state, exit statuses and history come from the shell itself.
//!
//! Only for shells whose hooks we know: bash (PROMPT_COMMAND, PS0, PS1), zsh (precmd,
//! preexec, PS1) and POSIX shells (dash, ash, busybox, ksh: `$?` in PS1, no command-start
//! mark). The login shell is asked for first over an exec channel, so nothing is typed into
//! another shell, a REPL or a network device's CLI. The hooks are typed as one line once the
//! first prompt is quiet, hidden from every reader until the first prompt they mark (see
//! [`super::running`]); bash's history loses that line. If no marked prompt comes within
//! [`INSTALL_TIMEOUT`], what was held is let through and the session goes on without
//! integration (`shell_integration: false`, state from heuristics): never a hang.

use std::time::Duration;

use bytes::Bytes;

use super::send::wait_idle;
use super::SessionHandle;

/// How long the hooks may take to produce their first marked prompt.
pub const INSTALL_TIMEOUT: Duration = Duration::from_secs(3);
/// Quiet that says the shell's first prompt is out.
const FIRST_PROMPT_QUIET: Duration = Duration::from_millis(150);
/// Longest wait for that quiet (rc files, a slow MOTD).
const FIRST_PROMPT_MAX: Duration = Duration::from_secs(5);
/// Login shells the hooks are written for (basename of `$SHELL`).
const KNOWN_SHELLS: &[&str] = &["bash", "zsh", "sh", "dash", "ash", "ksh", "mksh", "busybox"];

/// Installs the hooks in `handle`'s shell if it is one we know (asking for the account's login
/// shell first when `check_login_shell`); returns whether the marks are flowing.
pub async fn install(handle: &SessionHandle, check_login_shell: bool) -> bool {
    if !handle.meta.shell_integration || (check_login_shell && !login_shell_is_known(handle).await)
    {
        return false;
    }
    wait_idle(handle, FIRST_PROMPT_QUIET, FIRST_PROMPT_MAX).await;
    let line = hooks_line(&handle.meta.nonce);
    if handle.install(Bytes::from(line)).await.is_err() {
        return false;
    }
    // The actor ends the setup when the first marked prompt comes (or too much output came
    // without one); until then the tick says `installing`.
    let deadline = tokio::time::Instant::now() + INSTALL_TIMEOUT;
    let ended = handle.wait_tick(deadline, |t| !t.installing).await.is_ok();
    let ok = ended && handle.info().await.is_ok_and(|i| i.shell_integration);
    // Let through whatever is still held (nothing, when the marked prompt came).
    handle.end_run_now(super::running::SETUP_ID).await;
    if !ok {
        tracing::info!(session = %handle.meta.id, "shell integration did not answer; heuristics only");
    }
    ok
}

/// Whether the account's login shell (`$SHELL`, asked over an exec channel of the session's
/// connection) is one the hooks are written for.
async fn login_shell_is_known(handle: &SessionHandle) -> bool {
    let Ok(v) = super::requests::session_exec(handle, "printf '%s' \"$SHELL\"".into(), 5000).await
    else {
        return false;
    };
    let shell = v["stdout"].as_str().unwrap_or_default().trim().to_string();
    let name = shell.rsplit('/').next().unwrap_or_default();
    KNOWN_SHELLS.contains(&name)
}

/// The one line that installs the hooks. POSIX syntax throughout, so it parses in every
/// shell it may meet (dash parses the untaken branches too, so zsh's array syntax is behind
/// an `eval`); it picks bash's, zsh's or the plain PS1 hooks at run time. Every mark carries
/// the session's `nonce`.
pub fn hooks_line(nonce: &str) -> String {
    format!(
        "__agentssh_n={nonce}; if [ -n \"${{BASH_VERSION-}}\" ]; then \
case $(HISTTIMEFORMAT= builtin history 1 2>/dev/null) in *__agentssh_n=$__agentssh_n*) builtin history -d $HISTCMD;; esac; \
__agentssh_pc() {{ local s=$?; printf '\\033]133;D;%s;agentssh=%s\\007\\033]133;A;agentssh=%s\\007' \"$s\" \"$__agentssh_n\" \"$__agentssh_n\"; return $s; }}; \
PROMPT_COMMAND=\"__agentssh_pc${{PROMPT_COMMAND:+; $PROMPT_COMMAND}}\"; \
PS0=\"$(printf '\\033]133;C;agentssh=%s\\007' \"$__agentssh_n\")${{PS0-}}\"; \
PS1=\"${{PS1}}\\[$(printf '\\033]133;B;agentssh=%s\\007' \"$__agentssh_n\")\\]\"; \
elif [ -n \"${{ZSH_VERSION-}}\" ]; then \
__agentssh_precmd() {{ local s=$?; printf '\\033]133;D;%s;agentssh=%s\\007\\033]133;A;agentssh=%s\\007' \"$s\" \"$__agentssh_n\" \"$__agentssh_n\"; return $s; }}; \
__agentssh_preexec() {{ printf '\\033]133;C;agentssh=%s\\007' \"$__agentssh_n\"; }}; \
eval 'precmd_functions=(__agentssh_precmd $precmd_functions); preexec_functions+=(__agentssh_preexec)'; \
PS1=\"${{PS1}}%{{$(printf '\\033]133;B;agentssh=%s\\007' \"$__agentssh_n\")%}}\"; \
else PS1=\"$(printf '\\033]133;D;')\\$?$(printf ';agentssh=%s\\007\\033]133;A;agentssh=%s\\007' \"$__agentssh_n\" \"$__agentssh_n\")${{PS1}}$(printf '\\033]133;B;agentssh=%s\\007' \"$__agentssh_n\")\"; fi\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hooks_line_is_one_line_carrying_the_nonce() {
        let line = hooks_line("abc123");
        assert_eq!(line.matches('\n').count(), 1);
        assert!(line.ends_with("fi\n"));
        assert!(line.starts_with("__agentssh_n=abc123;"));
        // The marks are printed by printf from escapes: the line itself holds no ESC byte, so
        // its echo can never be taken for a mark.
        assert!(!line.contains('\x1b'));
    }
}
