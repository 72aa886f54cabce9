//! The session registry and the session requests that wait (connect's initial output,
//! send with wait-idle/expect, run, read --follow).
//!
//! The registry maps ids (`s1`) and names to actor handles; its mutex guards only the map.
//! Waiting happens here, on the actor's tick channel, never inside the actor.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::pool::Pool;
use super::session::{
    self, ReadResult, ReadSpec, SessionHandle, SessionInfo, SessionMeta, Status, Writer,
};
use crate::error::{Error, ErrorCode, Result};
use crate::protocol::{SendRequest, WaitMode};
use crate::ssh::spec::ConnectSpec;

/// Longest input one `send` may carry.
pub const MAX_INPUT: usize = 1024 * 1024;
/// Longest any wait may last, whatever the client asked.
pub const MAX_WAIT: Duration = Duration::from_secs(24 * 3600);

/// All sessions of the daemon.
pub struct Registry {
    map: Mutex<BTreeMap<String, SessionHandle>>,
    next: AtomicU64,
    changes: tokio::sync::watch::Sender<u64>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            map: Mutex::default(),
            next: AtomicU64::new(0),
            changes: tokio::sync::watch::channel(0).0,
        }
    }
}

impl Registry {
    /// A receiver bumped whenever any session changes (output, status, controller) or
    /// sessions come and go: what the dashboard feed waits on.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn changed(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }
    fn insert(&self, handle: SessionHandle) {
        if let Ok(mut m) = self.map.lock() {
            m.insert(handle.meta.id.clone(), handle);
        }
        self.changed();
    }

    /// Finds a session by id or name.
    pub fn get(&self, key: &str) -> Result<SessionHandle> {
        let m = self
            .map
            .lock()
            .map_err(|_| Error::internal("session registry poisoned"))?;
        m.get(key)
            .or_else(|| m.values().find(|h| h.meta.name.as_deref() == Some(key)))
            .cloned()
            .ok_or_else(|| {
                Error::new(
                    ErrorCode::SessionNotFound,
                    format!("session '{key}' not found; run 'agentssh session list' to see open sessions"),
                )
            })
    }

    /// Every session, by id order.
    pub fn all(&self) -> Vec<SessionHandle> {
        self.map
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Drops a session from the registry.
    pub fn remove(&self, id: &str) {
        if let Ok(mut m) = self.map.lock() {
            m.remove(id);
        }
        self.changed();
    }

    fn next_id(&self) -> String {
        format!("s{}", self.next.fetch_add(1, Ordering::Relaxed) + 1)
    }

    fn check_name(&self, name: &Option<String>) -> Result<()> {
        if let Some(n) = name {
            let valid = !n.is_empty()
                && n.len() <= 64
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            if !valid {
                return Err(Error::usage(format!(
                    "invalid session name '{n}': use letters, digits, '-', '_' or '.'"
                )));
            }
            if n.starts_with('s') && n[1..].chars().all(|c| c.is_ascii_digit()) {
                return Err(Error::usage(format!(
                    "session name '{n}' looks like a session id; pick another"
                )));
            }
            if self.get(n).is_ok() {
                return Err(Error::new(
                    ErrorCode::Usage,
                    format!("a session named '{n}' already exists"),
                ));
            }
        }
        Ok(())
    }

    /// Metadata with `shared_with` filled in.
    pub async fn infos(&self) -> Vec<SessionInfo> {
        let mut infos = Vec::new();
        for h in self.all() {
            if let Ok(i) = h.info().await {
                infos.push(i);
            }
        }
        let snapshot = infos.clone();
        for i in &mut infos {
            i.shared_with = snapshot
                .iter()
                .filter(|o| {
                    o.id != i.id
                        && !o.connection_id.is_empty()
                        && o.connection_id == i.connection_id
                })
                .map(|o| o.id.clone())
                .collect();
        }
        infos
    }

    /// One session's metadata with `shared_with`.
    pub async fn info(&self, key: &str) -> Result<SessionInfo> {
        let id = self.get(key)?.meta.id.clone();
        self.infos()
            .await
            .into_iter()
            .find(|i| i.id == id)
            .ok_or_else(|| {
                Error::new(
                    ErrorCode::SessionNotFound,
                    format!("session '{key}' not found"),
                )
            })
    }

    /// Opens a session (connect or spawn).
    #[allow(clippy::too_many_arguments)]
    pub async fn open(
        &self,
        pool: &Pool,
        spec: ConnectSpec,
        retry: u32,
        name: Option<String>,
        reconnect: bool,
        cols: u16,
        rows: u16,
        wait_ms: u64,
        limit: usize,
    ) -> Result<serde_json::Value> {
        self.check_name(&name)?;
        let (cols, rows) = (cols.clamp(10, 500), rows.clamp(2, 300));
        let meta = SessionMeta {
            id: self.next_id(),
            name,
            spec,
            reconnect,
            created_at: crate::now_ms(),
            changes: self.changes.clone(),
        };
        let handle = session::start(pool.clone(), meta, retry, cols, rows).await?;
        self.insert(handle.clone());
        wait_idle(
            &handle,
            Duration::from_millis(wait_ms.min(60_000)),
            Duration::from_millis(wait_ms.min(60_000)),
        )
        .await;
        let read = handle
            .read(ReadSpec {
                offset: None,
                limit,
                raw: false,
            })
            .await?;
        let info = self.info(&handle.meta.id).await?;
        Ok(with_output(info, &read))
    }
}

/// Session metadata plus a read, as one JSON object.
pub fn with_output(info: SessionInfo, read: &ReadResult) -> serde_json::Value {
    let mut v = serde_json::to_value(info).unwrap_or_default();
    if let (Some(obj), Ok(serde_json::Value::Object(r))) =
        (v.as_object_mut(), serde_json::to_value(read))
    {
        obj.insert(
            "session_id".into(),
            obj.get("id").cloned().unwrap_or_default(),
        );
        for (k, val) in r {
            obj.insert(k, val);
        }
    }
    v
}

/// Waits until no output arrived for `idle`, the session stops running, or `max` passes.
pub async fn wait_idle(handle: &SessionHandle, idle: Duration, max: Duration) {
    let mut ticks = handle.ticks();
    let deadline = Instant::now() + max.min(MAX_WAIT);
    loop {
        let quiet_until = (Instant::now() + idle).min(deadline);
        match tokio::time::timeout_at(quiet_until, ticks.changed()).await {
            Err(_) => return,
            Ok(Err(_)) => return,
            Ok(Ok(())) => {
                if ticks.borrow().status != Status::Running || Instant::now() >= deadline {
                    return;
                }
            }
        }
    }
}

/// Waits until the session stops running or `max` passes; true if it stopped.
pub async fn wait_exit(handle: &SessionHandle, max: Duration) -> bool {
    let mut ticks = handle.ticks();
    let deadline = Instant::now() + max.min(MAX_WAIT);
    loop {
        if ticks.borrow().status != Status::Running {
            return true;
        }
        match tokio::time::timeout_at(deadline, ticks.changed()).await {
            Ok(Ok(())) => {}
            _ => return ticks.borrow().status != Status::Running,
        }
    }
}

/// `session send`: write, answer prompts, wait, return the new output.
pub async fn send(handle: &SessionHandle, req: &SendRequest) -> Result<serde_json::Value> {
    if req.input.len() > MAX_INPUT {
        return Err(Error::usage(format!(
            "--input is larger than {MAX_INPUT} bytes"
        )));
    }
    if req.expect.len() > 3 {
        return Err(Error::usage("at most three --expect/--respond pairs"));
    }
    let patterns = req
        .expect
        .iter()
        .map(|(re, resp)| {
            regex::Regex::new(re)
                .map(|r| (r, resp.clone()))
                .map_err(|e| Error::usage(format!("invalid --expect regex '{re}': {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let input = if req.crlf {
        req.input.replace("\r\n", "\n").replace('\n', "\r\n")
    } else {
        req.input.clone()
    };
    let start = handle.info().await?.output_bytes;
    // The unterminated line (the prompt) the input is typed after: the echo follows it.
    let prompt = if patterns.is_empty() {
        String::new()
    } else {
        handle
            .clean_range(start)
            .await?
            .0
            .pending
            .unwrap_or_default()
    };
    let note = req
        .input
        .lines()
        .next()
        .map(|l| l.chars().take(200).collect());
    handle
        .write(Bytes::from(input), Writer::Agent, note)
        .await?;

    let timeout = Duration::from_millis(req.timeout_ms).min(MAX_WAIT);
    let deadline = Instant::now() + timeout;
    let mut answered = Vec::new();
    // Where the echo of the last thing typed is expected, and that text: a pattern is looked
    // for only after it, so `--expect 'Password: '` never matches the echoed command line.
    let mut typed_at: Option<usize> = None;
    let mut typed = req.input.as_str();
    let mut timed_out = false;
    if !patterns.is_empty() {
        let mut ticks = handle.ticks();
        for (re, resp) in &patterns {
            loop {
                let (log, _) = handle.clean_range(start).await?;
                let text = format!("{}{}", log.text, log.pending.unwrap_or_default());
                let base = *typed_at.get_or_insert_with(|| {
                    if text.starts_with(&prompt) {
                        prompt.len()
                    } else {
                        0
                    }
                });
                let region = text.get(base..).unwrap_or_default();
                let found = echo_end(region, typed)
                    .and_then(|skip| Some(base + skip + re.find(region.get(skip..)?)?.end()));
                if let Some(matched_end) = found {
                    handle
                        .write(Bytes::from(resp.clone()), Writer::Agent, None)
                        .await?;
                    answered.push(re.as_str().to_string());
                    typed_at = Some(matched_end);
                    typed = resp.as_str();
                    break;
                }
                if ticks.borrow().status != Status::Running {
                    break;
                }
                match tokio::time::timeout_at(deadline, ticks.changed()).await {
                    Ok(Ok(())) => {}
                    _ => {
                        timed_out = true;
                        break;
                    }
                }
            }
            if timed_out {
                break;
            }
        }
    }
    let remaining = deadline.saturating_duration_since(Instant::now());
    match req.wait {
        WaitMode::Idle(ms) if !timed_out => {
            wait_idle(handle, Duration::from_millis(ms), remaining).await
        }
        WaitMode::Exit if !timed_out => timed_out = !wait_exit(handle, remaining).await,
        _ => {}
    }
    let read = handle
        .read(ReadSpec {
            offset: if req.raw { Some(0) } else { None },
            limit: req.limit,
            raw: req.raw,
        })
        .await?;
    let mut v = serde_json::to_value(&read).unwrap_or_default();
    if let Some(obj) = v.as_object_mut() {
        obj.insert("session_id".into(), handle.meta.id.clone().into());
        obj.insert(
            "status".into(),
            serde_json::to_value(handle.ticks().borrow().status).unwrap_or_default(),
        );
        obj.insert("expect_matched".into(), answered.into());
        obj.insert("timed_out".into(), timed_out.into());
    }
    if timed_out && !patterns.is_empty() && req.wait != WaitMode::Exit {
        return Err(Error::new(
            ErrorCode::Timeout,
            format!("--expect pattern not seen within {} ms", req.timeout_ms),
        ));
    }
    Ok(v)
}

/// Where, in the clean `output` that follows something typed, the echo of `typed` ends:
/// `Some(i)` once the output has shown all of it, or has departed from it (a terminal that
/// does not echo, such as a password prompt, or output that interleaved); `None` while the
/// output so far is still a prefix of the echo, so a caller waits for more. Control characters
/// other than newline and tab are not echoed as themselves and are skipped; carriage returns
/// never reach the clean text.
pub fn echo_end(output: &str, typed: &str) -> Option<usize> {
    let mut expected = typed
        .chars()
        .filter(|&c| c == '\n' || c == '\t' || !c.is_control())
        .peekable();
    for (i, c) in output.char_indices() {
        match expected.peek() {
            None => return Some(i),
            Some(&e) if e == c => {
                expected.next();
            }
            Some(_) => return Some(i),
        }
    }
    expected.peek().is_none().then_some(output.len())
}

/// A marker `session run` makes the shell print (an OSC sequence, invisible in clean output).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    /// The run's nonce.
    pub nonce: String,
    /// Exit status for an end marker; None for a begin marker.
    pub exit_status: Option<i32>,
    /// Committed clean offset when the marker arrived.
    pub clean_end: u64,
    /// The unterminated line at that moment.
    pub pending: String,
}

impl Marker {
    /// Parses a payload `NONCE;b` or `NONCE;e;STATUS`.
    pub fn parse(payload: &str, clean_end: u64, pending: &str) -> Option<Marker> {
        let mut parts = payload.split(';');
        let nonce = parts.next()?.to_string();
        let exit_status = match parts.next()? {
            "b" => None,
            "e" => Some(parts.next()?.trim().parse().ok()?),
            _ => return None,
        };
        Some(Marker {
            nonce,
            exit_status,
            clean_end,
            pending: pending.to_string(),
        })
    }
}

/// The OSC prefix of run markers.
pub const MARKER_PREFIX: &[u8] = b"\x1b]777;agentssh;";
const MARKER_MAX: usize = 96;

/// Finds run markers in a byte stream, across chunk boundaries.
#[derive(Debug, Default)]
pub struct MarkerScanner {
    partial: Vec<u8>,
    active: bool,
}

impl MarkerScanner {
    /// Returns, for each marker that ends in `chunk`, the index just past it and its payload.
    pub fn scan(&mut self, chunk: &[u8]) -> Vec<(usize, String)> {
        let mut found = Vec::new();
        let mut i = 0;
        while i < chunk.len() {
            if !self.active {
                match chunk[i..].iter().position(|&b| b == 0x1b) {
                    Some(p) => {
                        i += p;
                        self.active = true;
                        self.partial.clear();
                    }
                    None => break,
                }
            }
            let b = chunk[i];
            i += 1;
            if b == 0x07
                && self.partial.len() > MARKER_PREFIX.len()
                && self.partial.starts_with(MARKER_PREFIX)
            {
                let payload =
                    String::from_utf8_lossy(&self.partial[MARKER_PREFIX.len()..]).into_owned();
                found.push((i, payload));
                self.active = false;
                continue;
            }
            self.partial.push(b);
            let n = self.partial.len();
            let ok = if n <= MARKER_PREFIX.len() {
                MARKER_PREFIX[n - 1] == b
            } else {
                n < MARKER_MAX && b != 0x1b
            };
            if !ok {
                self.active = b == 0x1b;
                self.partial.clear();
                if self.active {
                    self.partial.push(b);
                }
            }
        }
        found
    }
}

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
fn run_line(nonce: &str, command: &str) -> String {
    format!(
        "__agentssh_s=$?; __agentssh_c={cmd}; printf '\\033]777;agentssh;{nonce};b\\007'; \
[ -n \"${{BASH_VERSION-}}\" ] && case $(HISTTIMEFORMAT= builtin history 1 2>/dev/null) in *\"agentssh;{nonce};b\"*) builtin history -s -- \"$__agentssh_c\";; esac; \
__agentssh_e=command; [ -n \"${{ZSH_VERSION-}}\" ] && __agentssh_e=builtin; \
(exit $__agentssh_s); $__agentssh_e eval \"$__agentssh_c\"; __agentssh_s=$?; \
printf '\\033]777;agentssh;{nonce};e;%d\\007' \"$__agentssh_s\"; \
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

/// Ends a run when its caller returns or goes away (timeout, error, client gone), so the
/// session never stays busy and held output is let through.
struct RunGuard<'a> {
    handle: &'a SessionHandle,
    nonce: &'a str,
}

impl Drop for RunGuard<'_> {
    fn drop(&mut self) {
        self.handle.end_run(self.nonce);
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
    let nonce = crate::hex(&rand::random::<[u8; 8]>());
    let line = run_line(&nonce, command);
    let started = std::time::Instant::now();
    handle.begin_run(&nonce, command, Bytes::from(line)).await?;
    let guard = RunGuard {
        handle,
        nonce: &nonce,
    };
    let mut ticks = handle.ticks();
    let deadline = Instant::now() + timeout.min(MAX_WAIT);
    let end = loop {
        if let Some(m) = handle.marker(nonce.clone()).await? {
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
    let Some(end) = end else {
        // Free the session first (a busy session refuses agent keys), then interrupt what is
        // still running so the shell is usable again.
        handle.end_run_now(&nonce).await;
        let _ = handle
            .write(Bytes::from_static(b"\x03"), Writer::Agent, None)
            .await;
        let status = handle.ticks().borrow().status;
        return Err(if status == Status::Running {
            Error::new(
                ErrorCode::Timeout,
                format!(
                    "command did not finish within {} ms; sent Ctrl-C",
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
        });
    };
    drop(guard);
    let begin = handle.begin_marker(&nonce).await?;
    let from = begin.as_ref().map(|b| b.clean_end).unwrap_or(end.clean_end);
    let (log, _) = handle.clean_range(from).await?;
    let len = usize::try_from(end.clean_end.saturating_sub(log.offset))
        .unwrap_or(usize::MAX)
        .min(log.text.len());
    let mut full = log.text.get(..len).unwrap_or_default().to_string();
    full.push_str(&end.pending);
    if let Some(b) = &begin {
        if let Some(rest) = full.strip_prefix(b.pending.as_str()) {
            full = rest.to_string();
        }
    }
    let head_lost = log.offset.saturating_sub(from);
    let output = tail_at_line(&full, limit, head_lost > 0);
    let dropped = head_lost + (full.len() - output.len()) as u64;
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
        "exit_status": end.exit_status,
        "output": output,
        "truncated": dropped > 0,
        "dropped_bytes": dropped,
        "duration_ms": u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scanner_finds_markers_split_across_chunks() {
        let stream = b"out\x1b]777;agentssh;abc;e;3\x07prompt \x1b[0m\x1b]777;agentssh;abc;b\x07";
        for split in 0..stream.len() {
            let mut s = MarkerScanner::default();
            let mut found = Vec::new();
            for (end, p) in s.scan(&stream[..split]) {
                found.push((end, p));
            }
            for (end, p) in s.scan(&stream[split..]) {
                found.push((end + split, p));
            }
            let payloads: Vec<_> = found.iter().map(|(_, p)| p.as_str()).collect();
            assert_eq!(payloads, ["abc;e;3", "abc;b"], "split at {split}");
            assert_eq!(found[0].0, 3 + MARKER_PREFIX.len() + "abc;e;3".len() + 1);
        }
    }

    #[test]
    fn echoed_command_text_is_not_a_marker() {
        let mut s = MarkerScanner::default();
        assert!(s
            .scan(b"printf '\\033]777;agentssh;abc;e;%d\\007' \"$?\"")
            .is_empty());
    }

    #[test]
    fn markers_parse() {
        let m = Marker::parse("n1;e;42", 10, "").unwrap();
        assert_eq!(m.exit_status, Some(42));
        assert_eq!(Marker::parse("n1;b", 0, "").unwrap().exit_status, None);
        assert!(Marker::parse("n1;x", 0, "").is_none());
    }

    #[test]
    fn echo_end_skips_exactly_the_echo() {
        let typed = "sleep 2; read -s -p 'Password: ' pw\n";
        // Only part of the echo has arrived: wait.
        assert_eq!(echo_end("sleep 2; read -s", typed), None);
        assert_eq!(echo_end("", typed), None);
        // The whole echo, then the delayed prompt.
        let out = "sleep 2; read -s -p 'Password: ' pw\nPassword: ";
        assert_eq!(echo_end(out, typed), Some(typed.len()));
        // No echo at all (a no-echo prompt): matching starts at once.
        assert_eq!(echo_end("Sorry, try again.\n", "hunter2\n"), Some(0));
        // Control keys are not echoed as themselves.
        assert_eq!(echo_end("yes\nok", "\x15yes\n"), Some(4));
    }

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
