//! What each tool does: its arguments become the [`Request`] the CLI would send for the same
//! flags, sent through [`crate::client::DaemonClient`] as client kind `mcp` on the connection
//! [`super::link`] keeps between calls. Answers come back as the CLI's `data` object plus a
//! short text for the model.

use base64::Engine;
use serde_json::{json, Value};

use super::tools::{
    ExecArgs, FilePathArgs, FileWriteArgs, SessionArgs, SessionOpenArgs, SessionReadArgs,
    SessionRunArgs, SessionSendArgs, SessionWaitArgs, Target,
};
use super::{link, Policy, OUTPUT_LIMIT};
use crate::client::into_result;
use crate::error::{Error, Result};
use crate::profile::ProfileStore;
use crate::protocol::{
    ClientToDaemon, DaemonToClient, OutputStream, Request, SendRequest, WaitMode,
};
use crate::target::ConnectArgs;
use crate::wire::file::{FileAction, FileRequest, FileTarget, Method};
use crate::wire::spec::ConnectSpec;

/// A tool's success: the `data` object and a short text.
pub type Answer = (Value, String);

/// Output bounded by [`OUTPUT_LIMIT`]: the first bytes are kept, the rest counted.
#[derive(Default)]
struct Bounded {
    bytes: Vec<u8>,
    dropped: u64,
}

impl Bounded {
    fn push(&mut self, chunk: &[u8]) {
        let take = OUTPUT_LIMIT
            .saturating_sub(self.bytes.len())
            .min(chunk.len());
        self.bytes.extend_from_slice(&chunk[..take]);
        self.dropped += (chunk.len() - take) as u64;
    }

    /// Adds `name` (text, or `name_b64` when not UTF-8) and `name_truncated_bytes`.
    fn write_into(&self, obj: &mut serde_json::Map<String, Value>, name: &str) {
        match std::str::from_utf8(&self.bytes) {
            Ok(s) => {
                obj.insert(name.into(), s.into());
            }
            Err(_) => {
                let b64 = base64::engine::general_purpose::STANDARD.encode(&self.bytes);
                obj.insert(format!("{name}_b64"), b64.into());
            }
        }
        if self.dropped > 0 {
            obj.insert(format!("{name}_truncated_bytes"), self.dropped.into());
        }
    }
}

/// Resolves a target under the server's policy: only allowed profiles, inline values only
/// with `--allow-inline-targets`, and the one allowed profile when none is named.
pub(super) fn resolve(policy: &Policy, t: &Target) -> Result<ConnectSpec> {
    let inline = t.host.is_some() || t.port.is_some() || t.username.is_some();
    if inline && !policy.allow_inline {
        return Err(Error::usage(
            "inline host/port/username are disabled; use a saved profile (profile_list), or start the server with --allow-inline-targets",
        ));
    }
    let profile = match (&t.profile, policy.profiles.len()) {
        (None, 1) if !inline => policy.profiles.iter().next().cloned(),
        (p, _) => p.clone(),
    };
    if let Some(p) = &profile {
        if !policy.profiles.is_empty() && !policy.profiles.contains(p) {
            return Err(Error::usage(format!(
                "profile '{p}' is not allowed here; this server allows: {}",
                policy
                    .profiles
                    .iter()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    } else if !inline {
        return Err(Error::usage("no target: pass `profile` (see profile_list)"));
    }
    if inline && !policy.profiles.is_empty() && profile.is_none() {
        return Err(Error::usage(
            "this server allows only its profiles; pass `profile`",
        ));
    }
    crate::target::resolve(&ConnectArgs {
        profile,
        host: t.host.clone(),
        port: t.port,
        username: t.username.clone(),
        ready_timeout_ms: 15_000,
        ..ConnectArgs::default()
    })
}

/// Sends one request and waits for its final answer; a failure keeps its partial data.
pub(super) async fn ask(req: Request) -> Result<Value> {
    let mut client = link::connection().await?;
    let keeps = req.keeps_connection();
    let response = client.ask(req).await?;
    link::give_back(client, keeps);
    into_result(response).map_err(|(e, data)| match data {
        Some(d) => e.with_data(d),
        None => e,
    })
}

/// Sends one request, collecting `Output` frames (stdout, stderr) until the answer. The
/// connection stays open meanwhile: the daemon takes a closed socket for a caller that left.
async fn ask_streaming(req: Request) -> Result<(Result<Value>, Bounded, Bounded)> {
    let mut client = link::connection().await?;
    let keeps = req.keeps_connection();
    client.send(&ClientToDaemon::Request(req)).await?;
    let (mut out, mut err) = (Bounded::default(), Bounded::default());
    loop {
        match client.recv().await? {
            DaemonToClient::Output { stream, data } => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(data)
                    .map_err(|e| Error::internal(format!("bad output frame: {e}")))?;
                match stream {
                    OutputStream::Stdout => out.push(&bytes),
                    OutputStream::Stderr => err.push(&bytes),
                }
            }
            DaemonToClient::Response(r) => {
                link::give_back(client, keeps);
                let result = into_result(r).map_err(|(e, data)| match data {
                    Some(d) => e.with_data(d),
                    None => e,
                });
                return Ok((result, out, err));
            }
            _ => {}
        }
    }
}

/// The string at `key` (empty when absent).
pub(super) fn text_of(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_default().to_string()
}

/// `exec`.
pub async fn exec(policy: &Policy, a: ExecArgs) -> Result<Answer> {
    if a.command.trim().is_empty() {
        return Err(Error::usage("missing command"));
    }
    let spec = resolve(policy, &a.target)?;
    let req = Request::Exec {
        spec: Box::new(spec),
        command: a.command,
        timeout_ms: a.timeout,
        tty: false,
        stdin: false,
        retry: 0,
    };
    let (result, out, err) = ask_streaming(req).await?;
    let with_output = |mut v: Value| {
        if let Some(obj) = v.as_object_mut() {
            obj.remove("timed_out");
            out.write_into(obj, "stdout");
            err.write_into(obj, "stderr");
        }
        v
    };
    match result {
        Ok(v) => {
            let v = with_output(v);
            let text = format!(
                "exit_status: {}\n{}{}",
                v["exit_status"],
                text_of(&v, "stdout"),
                text_of(&v, "stderr")
            );
            Ok((v, text))
        }
        Err(mut e) => {
            let data = e.take_data().map(with_output);
            Err(match data {
                Some(d) => e.with_data(d),
                None => e,
            })
        }
    }
}

/// `profile_list`: the allowed profiles only.
pub fn profile_list(policy: &Policy) -> Result<Answer> {
    let store = ProfileStore::open_default()?;
    let list: Vec<Value> = store
        .list()?
        .iter()
        .filter(|(n, _)| policy.profiles.is_empty() || policy.profiles.contains(n))
        .map(|(n, p)| p.redacted(n))
        .collect();
    let names: Vec<String> = list.iter().map(|p| text_of(p, "name")).collect();
    let text = format!("{} profile(s): {}", list.len(), names.join(", "));
    Ok((json!({ "profiles": list }), text))
}

/// `session_open`.
pub async fn session_open(policy: &Policy, a: SessionOpenArgs) -> Result<Answer> {
    let spec = resolve(policy, &a.target)?;
    let v = ask(Request::Connect {
        spec: Box::new(spec),
        retry: 0,
        name: a.name,
        cols: 120,
        rows: 40,
        wait_ms: 250,
        limit: 8000,
        reconnect: a.reconnect,
        shell_integration: true,
        no_record: false,
    })
    .await?;
    let text = format!(
        "session_id: {}\n{}",
        text_of(&v, "id"),
        text_of(&v, "output")
    );
    Ok((v, text))
}

/// `session_run`.
pub async fn session_run(a: SessionRunArgs) -> Result<Answer> {
    let v = ask(Request::Run {
        session: a.session_id,
        command: a.command,
        timeout_ms: a.timeout,
        limit: OUTPUT_LIMIT,
        detach: false,
    })
    .await?;
    let text = format!(
        "exit_status: {}\n{}",
        v["exit_status"],
        text_of(&v, "output")
    );
    Ok((v, text))
}

/// `session_send`.
pub async fn session_send(a: SessionSendArgs) -> Result<Answer> {
    if a.expect.len() != a.respond.len() {
        return Err(Error::usage("each `expect` needs a matching `respond`"));
    }
    if a.expect.len() > 3 {
        return Err(Error::usage("at most three expect/respond pairs"));
    }
    let wait = match a.wait_idle {
        Some(0) => WaitMode::None,
        Some(ms) => WaitMode::Idle(ms),
        None => WaitMode::Idle(300),
    };
    let v = ask(Request::Send(Box::new(SendRequest {
        session: a.session_id,
        input: a.input,
        crlf: false,
        wait,
        timeout_ms: a.timeout,
        expect: a.expect.into_iter().zip(a.respond).collect(),
        raw: false,
        limit: OUTPUT_LIMIT,
    })))
    .await?;
    let text = text_of(&v, "output");
    Ok((v, text))
}

/// `session_read`: at most [`OUTPUT_LIMIT`] bytes; the daemon's answer carries the offset
/// to continue from.
pub async fn session_read(a: SessionReadArgs) -> Result<Answer> {
    let v = ask(Request::Read {
        session: a.session_id,
        offset: a.offset,
        raw: false,
        limit: a.limit.clamp(1, OUTPUT_LIMIT),
        follow: false,
        timeout_ms: 0,
    })
    .await?;
    let text = text_of(&v, "output");
    Ok((v, text))
}

/// `session_screen`.
pub async fn session_screen(a: SessionArgs) -> Result<Answer> {
    let v = ask(Request::Screen {
        session: a.session_id,
    })
    .await?;
    let text = v["rows"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| r.as_str().unwrap_or_default())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default();
    Ok((v, text))
}

/// `session_wait`.
pub async fn session_wait(a: SessionWaitArgs) -> Result<Answer> {
    let v = ask(Request::Wait {
        session: a.session_id,
        until: a.until,
        quiet_ms: a.quiet_ms,
        timeout_ms: a.timeout,
        limit: OUTPUT_LIMIT,
    })
    .await?;
    let text = text_of(&v, "output");
    Ok((v, text))
}

/// `session_list`.
pub async fn session_list() -> Result<Answer> {
    let v = ask(Request::SessionList).await?;
    let n = v["sessions"].as_array().map_or(0, Vec::len);
    Ok((v, format!("{n} session(s)")))
}

/// `session_close`.
pub async fn session_close(a: SessionArgs) -> Result<Answer> {
    let id = a.session_id.clone();
    let v = ask(Request::Close {
        session: Some(a.session_id),
        all: false,
    })
    .await?;
    Ok((v, format!("closed {id}")))
}

/// The connection a file tool uses: its session's, or a pooled one for the target.
pub(super) fn file_target(
    policy: &Policy,
    t: &Target,
    session: Option<String>,
) -> Result<FileTarget> {
    Ok(match session {
        Some(session) => FileTarget::Session { session },
        None => FileTarget::Spec {
            spec: Box::new(resolve(policy, t)?),
            retry: 0,
        },
    })
}

/// `file_read`: the content, cut at [`OUTPUT_LIMIT`] (`content_truncated_bytes` says how much
/// was left out).
pub async fn file_read(policy: &Policy, a: FilePathArgs) -> Result<Answer> {
    let req = Request::File(Box::new(FileRequest {
        target: file_target(policy, &a.target, a.session_id)?,
        method: Method::Auto,
        action: FileAction::Read {
            remote: a.remote,
            max_bytes: None,
        },
    }));
    let (result, content, _) = ask_streaming(req).await?;
    let mut v = result?;
    if let Some(obj) = v.as_object_mut() {
        content.write_into(obj, "content");
        if obj.contains_key("content_b64") {
            obj.insert("binary".into(), true.into());
        }
    }
    let text = text_of(&v, "content");
    Ok((v, text))
}

/// `file_write`.
pub async fn file_write(policy: &Policy, a: FileWriteArgs) -> Result<Answer> {
    let remote = a.remote.clone();
    let v = ask(Request::File(Box::new(FileRequest {
        target: file_target(policy, &a.target, a.session_id)?,
        method: Method::Auto,
        action: FileAction::Write {
            remote: a.remote,
            content: Some(a.content),
            append: a.append,
            parents: a.parents,
        },
    })))
    .await?;
    Ok((v, format!("wrote {remote}")))
}

/// `file_ls`.
pub async fn file_ls(policy: &Policy, a: FilePathArgs) -> Result<Answer> {
    let v = ask(Request::File(Box::new(FileRequest {
        target: file_target(policy, &a.target, a.session_id)?,
        method: Method::Auto,
        action: FileAction::Ls { remote: a.remote },
    })))
    .await?;
    let names: Vec<String> = v["entries"]
        .as_array()
        .map(|es| es.iter().map(|e| text_of(e, "name")).collect())
        .unwrap_or_default();
    Ok((v, names.join("\n")))
}
