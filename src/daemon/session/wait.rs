//! `session wait`: waits in the daemon, on the actor's tick channel (no polling), until the
//! session is at its prompt, waits for input, has ended, has gone quiet, or shows a text;
//! then returns the state and the output that arrived meanwhile, moving the agent's cursor
//! as `read` does.

use std::time::Duration;

use regex::Regex;
use serde_json::Value;
use tokio::time::Instant;

use super::attention::State;
use super::{ReadSpec, SessionHandle, Status, MAX_WAIT};
use crate::error::{Error, ErrorCode, Result};

/// What a wait waits for.
#[derive(Debug)]
enum Until {
    Prompt,
    Input,
    Exit,
    Quiet(Duration),
    Text(Regex),
}

impl Until {
    fn parse(s: &str, quiet_ms: u64) -> Result<Until> {
        Ok(match s {
            "prompt" => Until::Prompt,
            "input" => Until::Input,
            "exit" => Until::Exit,
            "quiet" => Until::Quiet(Duration::from_millis(quiet_ms.clamp(1, 3_600_000))),
            _ => {
                match s.strip_prefix("text:") {
                    Some(re) => Until::Text(Regex::new(re).map_err(|e| {
                        Error::usage(format!("invalid --for text regex '{re}': {e}"))
                    })?),
                    None => {
                        return Err(Error::usage(format!(
                            "--for '{s}': use prompt, input, exit, quiet or text:REGEX"
                        )))
                    }
                }
            }
        })
    }
}

/// Serves `session wait`.
pub async fn wait(
    handle: &SessionHandle,
    until: &str,
    quiet_ms: u64,
    timeout_ms: u64,
    limit: usize,
) -> Result<Value> {
    let until = Until::parse(until, quiet_ms)?;
    let deadline = Instant::now() + Duration::from_millis(timeout_ms).min(MAX_WAIT);
    let cursor = handle.info().await?.cursor;
    let mut ticks = handle.ticks();
    let mut matched = None;
    loop {
        let tick = *ticks.borrow_and_update();
        let done = match &until {
            Until::Prompt => tick.state == State::Prompt,
            Until::Input => tick.state == State::Input,
            Until::Exit => tick.status != Status::Running && tick.status != Status::Reconnecting,
            Until::Quiet(_) => false,
            Until::Text(re) => {
                let (log, _) = handle.clean_range(cursor).await?;
                let text = format!("{}{}", log.text, log.pending.unwrap_or_default());
                matched = re.find(&text).map(|m| m.as_str().to_string());
                matched.is_some()
            }
        };
        if done {
            break;
        }
        let wake = match &until {
            Until::Quiet(q) => (Instant::now() + *q).min(deadline),
            _ => deadline,
        };
        match tokio::time::timeout_at(wake, ticks.changed()).await {
            Ok(Ok(())) => {}
            // The session's actor is gone: nothing more will happen.
            Ok(Err(_)) => break,
            Err(_) if matches!(until, Until::Quiet(_)) && Instant::now() < deadline => break,
            Err(_) => {
                let state = handle.info().await.map(|i| i.state).ok();
                return Err(Error::new(
                    ErrorCode::Timeout,
                    format!(
                        "session {} did not reach '{}' within {timeout_ms} ms (state: {})",
                        handle.meta.id,
                        describe(&until),
                        state
                            .and_then(|s| serde_json::to_value(s).ok())
                            .and_then(|v| v.as_str().map(String::from))
                            .unwrap_or_else(|| "unknown".into())
                    ),
                ));
            }
        }
    }
    let read = handle
        .read(ReadSpec {
            offset: None,
            limit,
            raw: false,
        })
        .await?;
    let info = handle.info().await?;
    let mut v = serde_json::to_value(&read).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.insert("session_id".into(), handle.meta.id.clone().into());
        o.insert(
            "state".into(),
            serde_json::to_value(info.state).unwrap_or_default(),
        );
        o.insert(
            "last_exit_status".into(),
            serde_json::to_value(info.last_exit_status).unwrap_or_default(),
        );
        if let Some(m) = matched {
            o.insert("matched".into(), m.into());
        }
    }
    Ok(v)
}

fn describe(until: &Until) -> String {
    match until {
        Until::Prompt => "prompt".into(),
        Until::Input => "input".into(),
        Until::Exit => "exit".into(),
        Until::Quiet(d) => format!("quiet for {} ms", d.as_millis()),
        Until::Text(re) => format!("text:{}", re.as_str()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn until_parses_and_rejects_with_a_usage_error() {
        assert!(matches!(Until::parse("prompt", 0), Ok(Until::Prompt)));
        assert!(matches!(Until::parse("quiet", 250), Ok(Until::Quiet(d)) if d.as_millis() == 250));
        assert!(matches!(Until::parse("text:ab+c", 0), Ok(Until::Text(_))));
        for bad in ["idle", "text:(", ""] {
            assert_eq!(
                Until::parse(bad, 0).unwrap_err().code,
                ErrorCode::Usage,
                "{bad}"
            );
        }
    }
}
