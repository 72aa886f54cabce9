//! Proxy addresses: parsing `HOST:PORT`, `[V6]:PORT` and `PORT`, the loopback rule
//! (binding anything else needs `--allow-public`), and binding a local listener with errors
//! that carry the right codes (`address_in_use`, `permission_denied`, `usage`).

use std::net::{IpAddr, SocketAddr};

use tokio::net::TcpListener;

use crate::error::{Error, ErrorCode, Result};

/// A parsed address: host (IPv6 without brackets) and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    /// Host name or IP address.
    pub host: String,
    /// Port (0 = let the listener's side choose).
    pub port: u16,
}

impl std::fmt::Display for HostPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::wire::spec::host_port(&self.host, self.port))
    }
}

/// Parses `what` (`HOST:PORT`, `[V6]:PORT`, or a bare `PORT` meaning `default_host`).
pub fn parse(text: &str, default_host: &str, what: &str) -> Result<HostPort> {
    let bad = |why: &str| {
        Error::usage(format!(
            "invalid {what} '{text}': {why} (use HOST:PORT, [IPV6]:PORT or PORT)"
        ))
    };
    let text = text.trim();
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (h, p) = rest.split_once("]:").ok_or_else(|| bad("missing ]:PORT"))?;
        (h.to_string(), p)
    } else if let Some((h, p)) = text.rsplit_once(':') {
        if h.contains(':') {
            return Err(bad("put IPv6 addresses in brackets"));
        }
        (h.to_string(), p)
    } else {
        (default_host.to_string(), text)
    };
    let port: u16 = port.parse().map_err(|_| bad("bad port"))?;
    let host = match host.as_str() {
        "" | "*" => "0.0.0.0".to_string(),
        _ => host,
    };
    Ok(HostPort { host, port })
}

/// Whether `host` names only loopback addresses (`localhost`, 127.0.0.0/8, ::1).
pub fn is_loopback_name(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

/// Refuses a non-loopback `addr` unless `allow_public`.
pub fn check_public(addr: &HostPort, allow_public: bool, what: &str) -> Result<()> {
    if allow_public || is_loopback_name(&addr.host) {
        return Ok(());
    }
    Err(Error::usage(format!(
        "{what} {addr} is not a loopback address: anyone who can reach it could use the \
         tunnel; pass --allow-public to bind it anyway"
    )))
}

/// Binds a local listener on `addr`, resolving a host name (every address it resolves to
/// must pass the loopback rule unless `allow_public`).
pub async fn bind(addr: &HostPort, allow_public: bool) -> Result<TcpListener> {
    let resolved: Vec<SocketAddr> = tokio::net::lookup_host((addr.host.as_str(), addr.port))
        .await
        .map_err(|e| Error::usage(format!("cannot resolve listen address {addr}: {e}")))?
        .collect();
    let Some(first) = resolved.first().copied() else {
        return Err(Error::usage(format!(
            "listen address {addr} resolves to nothing"
        )));
    };
    if !allow_public && resolved.iter().any(|a| !a.ip().is_loopback()) {
        return Err(Error::usage(format!(
            "listen address {addr} is not loopback; pass --allow-public to bind it anyway"
        )));
    }
    TcpListener::bind(first).await.map_err(|e| match e.kind() {
        std::io::ErrorKind::AddrInUse => Error::new(
            ErrorCode::AddressInUse,
            format!("{addr} is already in use; pick another port (or 0 for any free one)"),
        ),
        std::io::ErrorKind::PermissionDenied => Error::new(
            ErrorCode::PermissionDenied,
            format!("not allowed to listen on {addr}: {e} (ports below 1024 need privileges)"),
        ),
        std::io::ErrorKind::AddrNotAvailable => Error::usage(format!(
            "cannot listen on {addr}: no local interface has that address"
        )),
        _ => Error::local_io(format!("cannot listen on {addr}"), &e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hp(h: &str, p: u16) -> HostPort {
        HostPort {
            host: h.into(),
            port: p,
        }
    }

    #[test]
    fn forms() {
        assert_eq!(
            parse("127.0.0.1:80", "x", "a").unwrap(),
            hp("127.0.0.1", 80)
        );
        assert_eq!(
            parse("8080", "127.0.0.1", "a").unwrap(),
            hp("127.0.0.1", 8080)
        );
        assert_eq!(parse("[::1]:22", "x", "a").unwrap(), hp("::1", 22));
        assert_eq!(
            parse("db.internal:5432", "x", "a").unwrap(),
            hp("db.internal", 5432)
        );
        assert_eq!(parse("*:1080", "x", "a").unwrap(), hp("0.0.0.0", 1080));
        assert_eq!(parse(":1080", "x", "a").unwrap(), hp("0.0.0.0", 1080));
        assert_eq!(parse("0", "127.0.0.1", "a").unwrap(), hp("127.0.0.1", 0));
        for bad in ["", "host:", "host:99999", "::1:80", "[::1]80", "a:b"] {
            let e = parse(bad, "x", "a").unwrap_err();
            assert_eq!(e.code, ErrorCode::Usage, "{bad}");
        }
    }

    #[test]
    fn loopback_rule() {
        for ok in ["127.0.0.1", "127.1.2.3", "::1", "localhost", "LOCALHOST"] {
            assert!(check_public(&hp(ok, 1), false, "x").is_ok(), "{ok}");
        }
        for public in ["0.0.0.0", "::", "10.0.0.1", "example.com"] {
            assert_eq!(
                check_public(&hp(public, 1), false, "x").unwrap_err().code,
                ErrorCode::Usage
            );
            assert!(check_public(&hp(public, 1), true, "x").is_ok());
        }
    }

    #[tokio::test]
    async fn bind_reports_address_in_use_and_real_port() {
        let l = bind(&hp("127.0.0.1", 0), false).await.unwrap();
        let port = l.local_addr().unwrap().port();
        assert_ne!(port, 0);
        let e = bind(&hp("127.0.0.1", port), false).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::AddressInUse);
        let e = bind(&hp("0.0.0.0", 0), false).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::Usage);
    }
}
