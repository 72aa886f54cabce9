//! `session send` and the waits it shares with other requests (wait-idle, wait-for-exit):
//! typing into a session, answering prompts with expect/respond, and returning new output.
//! Waiting happens here, on the actor's tick channel, never inside the actor.

use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::{ReadSpec, SessionHandle, Status, Writer, MAX_INPUT, MAX_WAIT};
use crate::error::{Error, ErrorCode, Result};
use crate::protocol::{SendRequest, WaitMode};

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

#[cfg(test)]
mod tests {
    use super::*;
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
}
