//! The rmcp server: tool listing (filtered by `--tools`), dispatch of tool calls to
//! [`super::calls`], and the shape of results and tool errors.

use std::time::{Duration, Instant};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, PaginatedRequestParams, ProgressNotificationParam, ServerCapabilities,
    ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use super::calls::{self, Answer};
use super::tools::{self, NoArgs};
use super::Policy;
use super::{files, proxies};
use crate::error::{Error, ErrorCode, Result};

const INSTRUCTIONS: &str = "agentssh: SSH for agents. Use `exec` for one-off commands; \
`session_open` + `session_run` for a shell that keeps state (cwd, env) or interactive \
programs (`session_send`, `session_screen`, `session_wait`); `file_*` to read and write \
remote files without shell quoting. Targets are saved profiles (`profile_list`). \
Sessions live in the agentssh daemon and humans can watch them in the dashboard.";

/// The MCP server state: just the policy; calls reach the daemon through [`super::link`].
#[derive(Clone)]
struct Server {
    policy: Policy,
}

/// Parses a tool's arguments (absent = `{}`); a mismatch is a `usage` tool error.
fn parse<T: DeserializeOwned>(args: Option<rmcp::model::JsonObject>) -> Result<T> {
    let v = Value::Object(args.unwrap_or_default());
    serde_path_to_error::deserialize(v).map_err(|e| {
        let field = e.path().to_string();
        match field.as_str() {
            "." => Error::usage(format!("bad arguments: {}", e.inner())),
            _ => Error::usage(format!("bad arguments: {field}: {}", e.inner())),
        }
    })
}

/// A success: structured content = `data`, content = the short text.
fn success((data, text): Answer) -> CallToolResult {
    let mut r = CallToolResult::structured(data);
    r.content = vec![ContentBlock::text(text)];
    r
}

/// A tool error: structured content `{code, error}` (plus `data` when a failure carries
/// partial results, e.g. output before a timeout).
fn failure(mut e: Error) -> CallToolResult {
    let mut v = json!({ "code": e.code.as_str(), "error": e.message });
    if let Some(d) = e.take_data() {
        v["data"] = d;
    }
    let mut r = CallToolResult::structured_error(v);
    r.content = vec![ContentBlock::text(format!(
        "{}: {}",
        e.code.as_str(),
        e.message
    ))];
    r
}

impl Server {
    async fn dispatch(&self, name: &str, args: Option<rmcp::model::JsonObject>) -> Result<Answer> {
        let p = &self.policy;
        match name {
            "exec" => calls::exec(p, parse(args)?).await,
            "profile_list" => {
                parse::<NoArgs>(args)?;
                calls::profile_list(p)
            }
            "session_open" => calls::session_open(p, parse(args)?).await,
            "session_run" => calls::session_run(parse(args)?).await,
            "session_send" => calls::session_send(parse(args)?).await,
            "session_read" => calls::session_read(parse(args)?).await,
            "session_screen" => calls::session_screen(parse(args)?).await,
            "session_wait" => calls::session_wait(parse(args)?).await,
            "session_list" => {
                parse::<NoArgs>(args)?;
                calls::session_list().await
            }
            "session_close" => calls::session_close(parse(args)?).await,
            "file_read" => calls::file_read(p, parse(args)?).await,
            "file_write" => calls::file_write(p, parse(args)?).await,
            "file_ls" => calls::file_ls(p, parse(args)?).await,
            "file_edit" => files::file_edit(p, parse(args)?).await,
            "file_upload" => files::file_upload(p, parse(args)?).await,
            "file_download" => files::file_download(p, parse(args)?).await,
            "file_delete" => files::file_delete(p, parse(args)?).await,
            "proxy_create" => proxies::proxy_create(p, parse(args)?).await,
            "proxy_list" => {
                parse::<NoArgs>(args)?;
                proxies::proxy_list().await
            }
            "proxy_close" => proxies::proxy_close(parse(args)?).await,
            other => Err(Error::internal(format!("tool '{other}' has no handler"))),
        }
    }
}

impl ServerHandler for Server {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(
                "agentssh",
                crate::protocol::BINARY_VERSION,
            ))
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> std::result::Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(tools::listed(
            &self.policy.groups,
        )))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> std::result::Result<CallToolResponse, ErrorData> {
        let name = request.name.to_string();
        // An unknown tool, or one of a group --tools left out, is a protocol error: the
        // model asked for something that was never offered.
        match tools::group_of(&name) {
            Some(g) if self.policy.groups.contains(&g) => {}
            _ => {
                return Err(ErrorData::invalid_params(
                    format!("unknown tool: {name}"),
                    None,
                ))
            }
        }
        let size = arguments_size(request.arguments.as_ref());
        if size > MAX_ARGUMENTS {
            tracing::info!(tool = %name, size, "tool arguments too large");
            return Ok(failure(Error::usage(format!(
                "the arguments of {name} take {size} bytes, over the {MAX_ARGUMENTS}-byte limit; \
                 for big content use file_upload from a local file"
            )))
            .into());
        }
        tracing::debug!(tool = %name, "tool call");
        let outcome = run_tool(&name, self.dispatch(&name, request.arguments), &context).await?;
        let result = match outcome {
            Ok(answer) => success(answer),
            Err(e) => {
                tracing::info!(tool = %name, code = e.code.as_str(), "tool error");
                failure(e)
            }
        };
        Ok(result.into())
    }
}

/// The longest incoming MCP message (one line of JSON-RPC). A longer line is dropped
/// unread by rmcp without an answer (it has no id we could answer to); up to this size a
/// request is parsed, so an oversized argument gets a tool error of its own call.
const MAX_MESSAGE: usize = 32 * 1024 * 1024;

/// The most a tool call's arguments may take, as JSON: well under the daemon's frame limit
/// ([`crate::protocol::MAX_FRAME`]), which the request built from them must fit in.
const MAX_ARGUMENTS: usize = 8 * 1024 * 1024;

/// Counts the bytes written to it (to size the arguments without a copy).
struct Counter(usize);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 = self.0.saturating_add(buf.len());
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The size of a call's arguments as compact JSON.
fn arguments_size(args: Option<&rmcp::model::JsonObject>) -> usize {
    let mut c = Counter(0);
    if let Some(a) = args {
        // Writing to a counter cannot fail; a serialisation error would leave a smaller
        // count, and the daemon's frame limit still holds.
        let _ = serde_json::to_writer(&mut c, a);
    }
    c.0
}

/// How often a long tool call reports progress (when the client asked for it).
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// The JSON-RPC error code of a call the client cancelled (LSP's `RequestCancelled`; MCP
/// defines none, and a client that cancelled does not wait for the answer anyway).
const CANCELLED: rmcp::model::ErrorCode = rmcp::model::ErrorCode(-32800);

/// Runs one tool call to its end, meanwhile sending a progress notification every
/// [`PROGRESS_EVERY`] when the request carries a progress token (`progress` = seconds so
/// far). When the client cancels the request (`notifications/cancelled`), the call is
/// dropped: that closes its daemon connection, and the daemon stops a running remote command
/// as it does for a `--timeout` (an exec) or simply ends the wait (a session wait or run).
async fn run_tool(
    name: &str,
    work: impl std::future::Future<Output = Result<Answer>>,
    context: &RequestContext<RoleServer>,
) -> std::result::Result<Result<Answer>, ErrorData> {
    let token = context.meta.get_progress_token();
    let started = Instant::now();
    let mut tick =
        tokio::time::interval_at(tokio::time::Instant::now() + PROGRESS_EVERY, PROGRESS_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(work);
    loop {
        tokio::select! {
            outcome = &mut work => return Ok(outcome),
            () = context.ct.cancelled() => {
                tracing::info!(tool = %name, "tool call cancelled by the client");
                return Err(ErrorData::new(CANCELLED, format!("{name} cancelled by the client"), None));
            }
            _ = tick.tick(), if token.is_some() => {
                if let Some(token) = &token {
                    let secs = started.elapsed().as_secs();
                    let note = ProgressNotificationParam::new(token.clone(), secs as f64)
                        .with_message(format!("{name}: running for {secs} s"));
                    // A client that stopped listening for progress is no reason to stop.
                    let _ = context.peer.notify_progress(note).await;
                }
            }
        }
    }
}

/// Serves on stdio until the client closes it.
pub async fn run(policy: Policy) -> Result<()> {
    let server = Server { policy };
    // Non-blocking pipes where stdin and stdout are FIFOs (as MCP clients start servers),
    // blocking stdio otherwise; one message at most MAX_MESSAGE bytes.
    let (stdin, stdout) = rmcp::transport::stdio_pipes();
    let transport = rmcp::transport::async_rw::AsyncRwTransport::new_server(stdin, stdout)
        .with_max_line_length(MAX_MESSAGE);
    let running = server
        .serve(transport)
        .await
        .map_err(|e| Error::new(ErrorCode::Usage, format!("MCP initialisation failed: {e}")))?;
    running
        .waiting()
        .await
        .map_err(|e| Error::internal(format!("MCP server stopped: {e}")))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use crate::mcp::tools::{ExecArgs, SessionSendArgs};

    fn args(v: Value) -> Option<rmcp::model::JsonObject> {
        v.as_object().cloned()
    }

    /// A wrong argument names its field; `expect`/`respond` take one string as a list of one.
    #[test]
    fn bad_arguments_name_the_field_and_one_expect_string_is_a_list() {
        let e = parse::<ExecArgs>(args(json!({"profile": "t", "command": 5}))).unwrap_err();
        assert_eq!(e.code, ErrorCode::Usage);
        assert!(e.message.starts_with("bad arguments: command: "), "{e:?}");
        let e = parse::<SessionSendArgs>(args(json!({"session_id": "s1", "input": "x",
            "expect": 3})))
        .unwrap_err();
        assert!(
            e.message
                .contains("expect: expected a string or a list of strings"),
            "{e:?}"
        );
        let a: SessionSendArgs = parse(args(json!({"session_id": "s1", "input": "x",
            "expect": "password:", "respond": "hunter2\n"})))
        .unwrap();
        assert_eq!(
            (a.expect, a.respond),
            (vec!["password:".to_string()], vec!["hunter2\n".to_string()])
        );
        let a: SessionSendArgs = parse(args(json!({"session_id": "s1", "input": "x",
            "expect": ["a", "b"], "respond": ["1", "2"]})))
        .unwrap();
        assert_eq!(a.expect.len(), 2);
    }
}
