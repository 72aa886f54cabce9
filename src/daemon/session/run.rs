//! `session run`: the line that makes the shell run a command between two marks (the
//! shell-integration marks of [`super::marks`], tagged with the run's id), and the request
//! that types that line and collects the command's output and exit status.

use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::attention::State;
use super::marks::{Mark, MarkKind};
use super::{ReadSpec, SessionHandle, Status, Tick, Writer, MAX_WAIT};
use crate::error::{Error, ErrorCode, Result};

/// Quotes `s` for a POSIX shell as one single-quoted word.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The line `session run` types into the shell: the command in a variable, a begin marker,
/// the command through `eval`, and an end marker with its exit status.
///
/// - `$?`: the shell's status before the line is saved first and restored with `(exit N)`
///   just before the command runs, so the command sees the real previous status; the last
///   thing on the line is `(exit N)` with the command's status, so the shell's `$?` after the
///   run is the command's.
/// - The command runs through `eval` in the shell itself, so `cd` and variables persist. A
///   POSIX shell treats `eval` as a special built-in: when it fails (a syntax error such as an
///   unbalanced quote, `. missing-file`, `${x?}`, `shift 5`), an interactive dash abandons the
///   rest of the input line, end marker included, and the caller would wait for its timeout.
///   `command eval` strips the special-built-in property, so the error is reported and the
///   line goes on to the end marker with the failure's status. zsh's `command` only runs
///   external programs, so there it is `builtin eval`.
/// - History: bash has put this line in its history when it runs it (unless HISTCONTROL or
///   HISTIGNORE kept it out); `history -s` replaces the last entry, so it is swapped for the
///   command as given, and only when the last entry really is this line.
/// - The command is typed once: a shell that reads lines in the kernel's canonical mode (dash)
///   gets at most 4095 bytes per line. Nobody sees the line itself: the daemon hides its echo
///   (see `session::running`).
fn run_line(nonce: &str, run: &str, command: &str) -> String {
    format!(
        "__agentssh_s=$?; __agentssh_c={cmd}; printf '\\033]133;C;agentssh={nonce};run={run}\\007'; \
[ -n \"${{BASH_VERSION-}}\" ] && case $(HISTTIMEFORMAT= builtin history 1 2>/dev/null) in *\"run={run}\"*) builtin history -s -- \"$__agentssh_c\";; esac; \
__agentssh_e=command; [ -n \"${{ZSH_VERSION-}}\" ] && __agentssh_e=builtin; \
(exit $__agentssh_s); $__agentssh_e eval \"$__agentssh_c\"; __agentssh_s=$?; \
printf '\\033]133;D;%d;agentssh={nonce};run={run}\\007' \"$__agentssh_s\"; \
eval \"unset __agentssh_s __agentssh_c __agentssh_e; (exit $__agentssh_s)\"\n",
        cmd = shell_quote(command)
    )
}

/// The last `limit` bytes of `text`, starting at a line start where one is in reach: after
/// the first newline past the cut, or (when `head_cut`, the text's start was already lost)
/// after its first newline. A single line longer than `limit` is cut at a character boundary.
pub fn tail_at_line(text: &str, limit: usize, head_cut: bool) -> &str {
    let mut start = text.len().saturating_sub(limit);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    if start > 0 || head_cut {
        // Move to the next line start, unless the cut already sits on one.
        let at_line_start = start > 0 && text.as_bytes()[start - 1] == b'\n';
        if !at_line_start {
            if let Some(nl) = text[start..].find('\n') {
                start += nl + 1;
            }
        }
    }
    &text[start..]
}

/// Longest wait, after a run's end mark, for the shell's next prompt; and before a run, for
/// the shell to be at its prompt.
const AFTER_RUN_PROMPT: Duration = Duration::from_secs(2);

/// With prompt marks, waits (briefly) until the shell is at its prompt, so a run's line is
/// never typed ahead into a command still running (or read before the prompt it follows);
/// refuses with `session_busy` when something else holds the shell. Without marks there is
/// no telling: the line is typed as before.
async fn at_prompt(handle: &SessionHandle) -> Result<()> {
    let info = handle.info().await?;
    if !info.shell_integration {
        return Ok(());
    }
    let by = Instant::now() + AFTER_RUN_PROMPT;
    // A closed session: typing fails with the right error (`session_closed`).
    let at_prompt = |t: &Tick| t.state == State::Prompt || t.state == State::Closed;
    let Err(last) = handle.wait_tick(by, at_prompt).await else {
        return Ok(());
    };
    let name = serde_json::to_value(last.state)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default();
    Err(Error::new(
        ErrorCode::SessionBusy,
        format!(
            "session {} is not at its prompt (state: {name}); wait for it (`session wait -s {} --for prompt`) or interrupt it (`session signal --signal INT`)",
            handle.meta.id, handle.meta.id
        ),
    ))
}

/// Ends a run when its caller returns or goes away (timeout, error, client gone), so the
/// session never stays busy and held output is let through.
struct RunGuard<'a> {
    handle: &'a SessionHandle,
    run: &'a str,
}

impl Drop for RunGuard<'_> {
    fn drop(&mut self) {
        self.handle.end_run(self.run);
    }
}

/// `session run`: runs `command` in the PTY shell between two markers and returns only its
/// output (the last `limit` bytes of it) and exit status.
pub async fn run(
    handle: &SessionHandle,
    command: &str,
    timeout: Duration,
    limit: usize,
) -> Result<serde_json::Value> {
    let limit = limit.min(crate::protocol::RUN_OUTPUT_LIMIT);
    let run_id = crate::hex(&rand::random::<[u8; 8]>());
    let line = run_line(&handle.meta.nonce, &run_id, command);
    let started = std::time::Instant::now();
    at_prompt(handle).await?;
    handle
        .begin_run(&run_id, command, Bytes::from(line))
        .await?;
    let guard = RunGuard {
        handle,
        run: &run_id,
    };
    let mut ticks = handle.ticks();
    let deadline = Instant::now() + timeout.min(MAX_WAIT);
    let end = loop {
        if let Some(m) = handle.run_mark(&run_id, true).await? {
            break Some(m);
        }
        if ticks.borrow().status != Status::Running {
            break None;
        }
        match tokio::time::timeout_at(deadline, ticks.changed()).await {
            Ok(Ok(())) => {}
            _ => break None,
        }
    };
    let begin = handle.run_mark(&run_id, false).await?;
    let Some(end) = end else {
        // What the command printed so far, kept for the agent (a timeout loses nothing).
        let partial = output_between(handle, begin.as_ref(), None, limit).await?;
        // Free the session first (a busy session refuses agent keys), then interrupt what is
        // still running so the shell is usable again.
        handle.end_run_now(&run_id).await;
        let _ = handle
            .write(Bytes::from_static(b"\x03"), Writer::Agent, None)
            .await;
        let status = handle.ticks().borrow().status;
        let data = serde_json::json!({
            "session_id": handle.meta.id,
            "output": partial.text,
            "truncated": partial.dropped > 0,
            "dropped_bytes": partial.dropped,
            "duration_ms": u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        });
        return Err(if status == Status::Running {
            Error::new(
                ErrorCode::Timeout,
                format!(
                    "command did not finish within {} ms; sent Ctrl-C (its output so far is in data.output)",
                    timeout.as_millis()
                ),
            )
        } else {
            Error::new(
                ErrorCode::SessionClosed,
                format!(
                    "session {} ended before the command finished",
                    handle.meta.id
                ),
            )
        }
        .with_data(data));
    };
    drop(guard);
    // With prompt marks, return once the shell shows its prompt again (it follows the end
    // mark at once), so what the agent types next is not typed ahead of the prompt.
    if handle.info().await?.shell_integration {
        let prompt_by = Instant::now() + AFTER_RUN_PROMPT;
        let _ = handle
            .wait_tick(prompt_by, |t| t.state == State::Prompt)
            .await;
    }
    let out = output_between(handle, begin.as_ref(), Some(&end), limit).await?;
    // The agent has now seen this output: move its cursor past it.
    let _ = handle
        .read(ReadSpec {
            offset: None,
            limit: usize::MAX,
            raw: false,
        })
        .await;
    Ok(serde_json::json!({
        "session_id": handle.meta.id,
        "exit_status": match end.kind {
            MarkKind::Finished(status) => Some(status),
            _ => None,
        },
        "output": out.text,
        "truncated": out.dropped > 0,
        "dropped_bytes": out.dropped,
        "duration_ms": u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    }))
}

/// `session run --detach`: types the command like `session run` does and returns its job id
/// at once. The session is busy for agents until the job ends (its end mark, the shell's next
/// prompt, or an interrupt); `session job` reads its state, output and exit status, also after
/// the CLI that started it has exited.
pub async fn start_job(handle: &SessionHandle, command: &str) -> Result<serde_json::Value> {
    let run_id = format!("j{}", crate::hex(&rand::random::<[u8; 6]>()));
    let line = run_line(&handle.meta.nonce, &run_id, command);
    at_prompt(handle).await?;
    handle
        .begin_run(&run_id, command, Bytes::from(line))
        .await?;
    Ok(serde_json::json!({
        "session_id": handle.meta.id,
        "job": run_id,
        "state": "running",
    }))
}

/// `session job`: a detached job's state and output (the last `limit` bytes), waiting for it
/// to end when asked.
pub async fn job(
    handle: &SessionHandle,
    job: &str,
    wait: bool,
    timeout_ms: u64,
    limit: usize,
) -> Result<serde_json::Value> {
    let limit = limit.min(crate::protocol::RUN_OUTPUT_LIMIT);
    let deadline = Instant::now() + Duration::from_millis(timeout_ms).min(MAX_WAIT);
    let mut ticks = handle.ticks();
    loop {
        // Ask whether it is still active before looking for its end mark: a job that ends
        // between the two questions then still shows its end mark (asked the other way round,
        // it would read as interrupted, without its exit status).
        let active = handle.active_run().await?.as_deref() == Some(job);
        let end = handle.run_mark(job, true).await?;
        let begin = handle.run_mark(job, false).await?;
        if begin.is_none() && end.is_none() && !active {
            return Err(Error::new(
                ErrorCode::NotFound,
                format!(
                    "no job '{job}' in session {} (only the latest jobs are kept)",
                    handle.meta.id
                ),
            ));
        }
        // Over when its end mark came, or when the session is no longer busy with it (an
        // interrupt ended it before its end mark).
        let done = end.is_some() || !active;
        if done || !wait {
            let out = output_between(handle, begin.as_ref(), end.as_ref(), limit).await?;
            let start = begin.as_ref().map_or(0, |b| b.clean_end);
            let next = match &end {
                Some(e) => e.clean_end,
                None => handle.info().await?.output_bytes,
            };
            return Ok(serde_json::json!({
                "session_id": handle.meta.id,
                "job": job,
                "state": if done { "done" } else { "running" },
                "exit_status": end.and_then(|e| match e.kind {
                    MarkKind::Finished(status) => Some(status),
                    _ => None,
                }),
                "output": out.text,
                "truncated": out.dropped > 0,
                "dropped_bytes": out.dropped,
                "offset": start,
                "next_offset": next.max(start),
            }));
        }
        match tokio::time::timeout_at(deadline, ticks.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(Error::new(ErrorCode::SessionClosed, "session is gone")),
            Err(_) => return Err(Error::new(
                ErrorCode::Timeout,
                format!("job {job} still runs after {timeout_ms} ms"),
            )
            .with_data(
                serde_json::json!({"session_id": handle.meta.id, "job": job, "state": "running"}),
            )),
        }
    }
}

/// A run's output as returned: the last `limit` bytes from a line start, and how many bytes
/// were left out.
struct RunOutput {
    text: String,
    dropped: u64,
}

/// The clean text between a run's begin mark and its end mark (or, with no end yet, what
/// has arrived so far, pending line included).
async fn output_between(
    handle: &SessionHandle,
    begin: Option<&Mark>,
    end: Option<&Mark>,
    limit: usize,
) -> Result<RunOutput> {
    let Some(begin) = begin.or(end) else {
        return Ok(RunOutput {
            text: String::new(),
            dropped: 0,
        });
    };
    let from = begin.clean_end;
    let (log, _) = handle.clean_range(from).await?;
    let mut full = match end {
        Some(end) => {
            let len = usize::try_from(end.clean_end.saturating_sub(log.offset))
                .unwrap_or(usize::MAX)
                .min(log.text.len());
            let mut t = log.text.get(..len).unwrap_or_default().to_string();
            t.push_str(&end.pending);
            t
        }
        None => format!("{}{}", log.text, log.pending.unwrap_or_default()),
    };
    if let Some(rest) = full.strip_prefix(begin.pending.as_str()) {
        full = rest.to_string();
    }
    let head_lost = log.offset.saturating_sub(from);
    let text = tail_at_line(&full, limit, head_lost > 0).to_string();
    let dropped = head_lost + (full.len() - text.len()) as u64;
    Ok(RunOutput { text, dropped })
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn tail_cuts_at_a_line_start() {
        assert_eq!(tail_at_line("a\nbb\nccc\n", 100, false), "a\nbb\nccc\n");
        assert_eq!(tail_at_line("a\nbb\nccc\n", 6, false), "ccc\n");
        assert_eq!(tail_at_line("a\nbb\nccc\n", 7, false), "bb\nccc\n");
        // The head was already lost: drop the partial first line.
        assert_eq!(tail_at_line("b\nccc\n", 100, true), "ccc\n");
        // One line longer than the limit: cut at a character boundary.
        assert_eq!(tail_at_line("xxééé", 4, false), "éé");
    }

    #[test]
    fn quoting_survives_single_quotes() {
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }
}
