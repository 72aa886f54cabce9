//! The proxy tools: `proxy_create`, `proxy_list`, `proxy_close`. Proxies are kept by the
//! daemon (they outlive this MCP process, like the CLI's) and listen on this machine's
//! loopback unless `allow_public` says otherwise; arguments are `proxy`'s flags in
//! snake_case.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use super::calls::{ask, resolve, text_of, Answer};
use super::tools::Target;
use super::Policy;
use crate::error::{Error, Result};
use crate::protocol::{ProxyForward, Request};

/// `proxy_create`: exactly one of `local` + `remote`, `socks5`, or `reverse` + `to`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ProxyCreateArgs {
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub target: Target,
    /// Local forward (like ssh -L): listen here on this machine, [HOST:]PORT (port 0 picks a
    /// free port; the answer reports the real one). Needs `remote`.
    pub local: Option<String>,
    /// With `local`: the HOST:PORT to reach, as seen from the server.
    pub remote: Option<String>,
    /// SOCKS5 proxy (like ssh -D): listen here, [HOST:]PORT; targets are reached from the
    /// server.
    pub socks5: Option<String>,
    /// Reverse forward (like ssh -R): the server listens here, [HOST:]PORT. Needs `to`.
    pub reverse: Option<String>,
    /// With `reverse`: the HOST:PORT on this machine its connections reach.
    pub to: Option<String>,
    /// A name, used as the proxy's id.
    pub name: Option<String>,
    /// Allow listening on a non-loopback address (anyone who reaches it can use the tunnel).
    #[serde(default)]
    pub allow_public: bool,
}

/// `proxy_close`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProxyCloseArgs {
    /// Proxy id or name (from proxy_create or proxy_list).
    pub proxy_id: Option<String>,
    /// Close every proxy instead.
    #[serde(default)]
    pub all: bool,
}

fn forward(a: &ProxyCreateArgs) -> Result<ProxyForward> {
    ProxyForward::from_parts(
        a.local.as_deref(),
        a.remote.as_deref(),
        a.socks5.as_deref(),
        a.reverse.as_deref(),
        a.to.as_deref(),
    )
    .ok_or_else(|| {
        Error::usage("pass exactly one of: `local` and `remote`; `socks5`; or `reverse` and `to`")
    })
}

/// One proxy as a line: `id  local -> remote  (n active)`.
fn row(v: &Value) -> String {
    let s = |k: &str| v[k].as_str().unwrap_or("-").to_string();
    let arrow = match v["kind"].as_str() {
        Some("reverse") => format!("{} <- {}", s("local"), s("remote")),
        Some("socks5") => format!("{} (socks5)", s("local")),
        _ => format!("{} -> {}", s("local"), s("remote")),
    };
    format!(
        "{}\t{arrow}\tvia {}\t{} active",
        s("id"),
        s("target"),
        v["active_clients"]
    )
}

/// `proxy_create`.
pub async fn proxy_create(policy: &Policy, a: ProxyCreateArgs) -> Result<Answer> {
    let forward = forward(&a)?;
    let spec = resolve(policy, &a.target)?;
    let v = ask(Request::ProxyCreate {
        spec: Box::new(spec),
        retry: 0,
        forward,
        name: a.name,
        allow_public: a.allow_public,
    })
    .await?;
    let text = format!("proxy_id: {}\n{}", text_of(&v, "proxy_id"), row(&v));
    Ok((v, text))
}

/// `proxy_list`.
pub async fn proxy_list() -> Result<Answer> {
    let v = ask(Request::ProxyList).await?;
    let rows: Vec<String> = v["proxies"]
        .as_array()
        .map(|a| a.iter().map(row).collect())
        .unwrap_or_default();
    let text = if rows.is_empty() {
        "no proxies".into()
    } else {
        rows.join("\n")
    };
    Ok((v, text))
}

/// `proxy_close`.
pub async fn proxy_close(a: ProxyCloseArgs) -> Result<Answer> {
    if a.proxy_id.is_some() == a.all {
        return Err(Error::usage("pass either `proxy_id` or `all: true`"));
    }
    let v = ask(Request::ProxyClose {
        proxy: a.proxy_id,
        all: a.all,
    })
    .await?;
    let ids: Vec<&str> = v["closed"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let text = if ids.is_empty() {
        "no proxies to close".into()
    } else {
        format!("closed {}", ids.join(" "))
    };
    Ok((v, text))
}
