//! `agentssh proxy ...`: local forwards, SOCKS5 and reverse forwards kept by the daemon.

use clap::{Args, Subcommand};
use serde_json::Value;

use super::session::ask;
use super::Reply;
use crate::error::{Error, Result};
use crate::protocol::{ProxyForward, Request};
use crate::target::ConnectArgs;

/// `proxy ...`.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum ProxyCommand {
    /// Start a local forward, a SOCKS5 proxy or a reverse forward (kept by the daemon).
    #[command(
        after_help = "Examples:\n  agentssh proxy create -p prod --local 127.0.0.1:5432 --remote 127.0.0.1:5432 --name pg\n  agentssh --json proxy create -p prod --socks5 127.0.0.1:1080\n  agentssh proxy create -p prod --reverse 127.0.0.1:8080 --to 127.0.0.1:3000\n\nPort 0 picks a free port (the real address is reported). Listening on a non-loopback\naddress needs --allow-public."
    )]
    Create(Box<CreateArgs>),
    /// All proxies with their counters.
    #[command(after_help = "Example:\n  agentssh --json proxy list")]
    List,
    /// Check that a proxy listens and its SSH connection answers (with latency).
    #[command(after_help = "Example:\n  agentssh --json proxy ping --proxy-id p1")]
    Ping {
        /// Proxy id or name.
        #[arg(long = "proxy-id", value_name = "ID")]
        proxy: String,
    },
    /// Close a proxy (its port is free at once), or all of them.
    #[command(
        after_help = "Examples:\n  agentssh proxy close --proxy-id p1\n  agentssh proxy close --all"
    )]
    Close {
        /// Proxy id or name.
        #[arg(long = "proxy-id", value_name = "ID", required_unless_present = "all")]
        proxy: Option<String>,
        /// Close every proxy.
        #[arg(long, conflicts_with = "proxy")]
        all: bool,
    },
}

// `proxy create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    #[command(flatten)]
    pub conn: ConnectArgs,
    /// Local forward: listen here ([HOST:]PORT) ...
    #[arg(long, value_name = "ADDR", requires = "remote", group = "what")]
    pub local: Option<String>,
    /// ... and connect to this address as seen from the server (HOST:PORT).
    #[arg(long, value_name = "ADDR", requires = "local")]
    pub remote: Option<String>,
    /// SOCKS5 proxy: listen here ([HOST:]PORT); targets are reached from the server.
    #[arg(long, value_name = "ADDR", group = "what")]
    pub socks5: Option<String>,
    /// Reverse forward: the server listens here ([HOST:]PORT) ...
    #[arg(long, value_name = "REMOTE_BIND", requires = "to", group = "what")]
    pub reverse: Option<String>,
    /// ... and its connections reach this local address (HOST:PORT).
    #[arg(long, value_name = "LOCAL_ADDR", requires = "reverse")]
    pub to: Option<String>,
    /// A name, used as the proxy's id.
    #[arg(long)]
    pub name: Option<String>,
    /// Allow listening on a non-loopback address (anyone who reaches it can use the tunnel).
    #[arg(long)]
    pub allow_public: bool,
    /// Retry connection failures this many times.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub retry: u32,
}

fn forward(a: &CreateArgs) -> Result<ProxyForward> {
    ProxyForward::from_parts(
        a.local.as_deref(),
        a.remote.as_deref(),
        a.socks5.as_deref(),
        a.reverse.as_deref(),
        a.to.as_deref(),
    )
    .ok_or_else(|| {
        Error::usage(
            "pass exactly one of --local ADDR --remote ADDR, --socks5 ADDR, or --reverse ADDR --to ADDR",
        )
    })
}

fn row_text(v: &Value) -> String {
    let s = |k: &str| v[k].as_str().unwrap_or("-").to_string();
    let arrow = match v["kind"].as_str() {
        Some("reverse") => format!("{} <- {}", s("local"), s("remote")),
        Some("socks5") => format!("{} (socks5)", s("local")),
        _ => format!("{} -> {}", s("local"), s("remote")),
    };
    format!(
        "{}\t{}\tvia {} ({})\t{} active\t{} in / {} out",
        s("id"),
        arrow,
        s("target"),
        s("connection_id"),
        v["active_clients"],
        v["bytes_in"],
        v["bytes_out"]
    )
}

/// `agentssh proxy ...`.
pub async fn run(cmd: ProxyCommand) -> Result<Reply> {
    match cmd {
        ProxyCommand::Create(a) => {
            let forward = forward(&a)?;
            let spec = super::target::resolve(&a.conn)?;
            let req = Request::ProxyCreate {
                spec: Box::new(spec),
                retry: a.retry,
                forward,
                name: a.name.clone(),
                allow_public: a.allow_public,
            };
            ask(req, |v| {
                format!(
                    "proxy_id: {}\n{}",
                    v["proxy_id"].as_str().unwrap_or_default(),
                    row_text(v)
                )
            })
            .await
        }
        ProxyCommand::List => {
            ask(Request::ProxyList, |v| {
                let rows: Vec<String> = v["proxies"]
                    .as_array()
                    .map(|a| a.iter().map(row_text).collect())
                    .unwrap_or_default();
                if rows.is_empty() {
                    "no proxies".into()
                } else {
                    rows.join("\n")
                }
            })
            .await
        }
        ProxyCommand::Ping { proxy } => {
            ask(Request::ProxyPing { proxy }, |v| {
                format!(
                    "{} alive via {} ({:.1} ms)",
                    v["proxy_id"].as_str().unwrap_or_default(),
                    v["connection_id"].as_str().unwrap_or_default(),
                    v["latency_ms"].as_f64().unwrap_or_default()
                )
            })
            .await
        }
        ProxyCommand::Close { proxy, all } => {
            ask(Request::ProxyClose { proxy, all }, |v| {
                let ids: Vec<&str> = v["closed"]
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                if ids.is_empty() {
                    "no proxies to close".into()
                } else {
                    format!("closed {}", ids.join(" "))
                }
            })
            .await
        }
    }
}
