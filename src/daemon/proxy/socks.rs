//! A minimal SOCKS5 server handshake (RFC 1928): no authentication, CONNECT only.
//!
//! [`accept`] reads the greeting and the request and returns the target, answering the
//! client itself when it asks for something we do not do (no acceptable method → `0xFF`,
//! BIND/UDP → `0x07`, unknown address type → `0x08`). The caller opens the SSH channel and
//! then sends the final [`Reply`] with [`reply`]. Domain names are returned as text, so they
//! are resolved on the SSH server's side. Reads are exact and small (at most 262 bytes per
//! message); the caller bounds the whole exchange with a deadline.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

const VERSION: u8 = 5;
const NO_AUTH: u8 = 0x00;
const NO_ACCEPTABLE: u8 = 0xFF;
const CMD_CONNECT: u8 = 1;
const ATYP_V4: u8 = 1;
const ATYP_DOMAIN: u8 = 3;
const ATYP_V6: u8 = 4;

/// Reply codes of RFC 1928 section 6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Reply {
    /// Succeeded.
    Succeeded = 0x00,
    /// General SOCKS server failure.
    GeneralFailure = 0x01,
    /// Connection not allowed by ruleset.
    NotAllowed = 0x02,
    /// Network unreachable.
    NetworkUnreachable = 0x03,
    /// Host unreachable.
    HostUnreachable = 0x04,
    /// Connection refused.
    ConnectionRefused = 0x05,
    /// TTL expired.
    TtlExpired = 0x06,
    /// Command not supported.
    CommandNotSupported = 0x07,
    /// Address type not supported.
    AddressTypeNotSupported = 0x08,
}

/// Why a handshake ended without a target.
#[derive(Debug, thiserror::Error)]
pub enum SocksError {
    /// The client spoke another protocol or version.
    #[error("not a SOCKS5 client (version byte {0:#04x})")]
    BadVersion(u8),
    /// The client offered no method we accept (we answered 0xFF).
    #[error("the client offered no acceptable authentication method")]
    NoAcceptableMethod,
    /// BIND or UDP ASSOCIATE (we answered 0x07).
    #[error("SOCKS command {0:#04x} is not supported (CONNECT only)")]
    CommandNotSupported(u8),
    /// Unknown address type (we answered 0x08).
    #[error("SOCKS address type {0:#04x} is not supported")]
    AddressTypeNotSupported(u8),
    /// A domain name that is empty or not UTF-8 (we answered 0x01).
    #[error("invalid domain name in SOCKS request")]
    BadDomain,
    /// Reading or writing failed (including the client hanging up).
    #[error("SOCKS handshake I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// Where the client wants to go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// An IP address (IPv6 without brackets) or a domain name.
    pub host: String,
    /// The port.
    pub port: u16,
}

/// Runs the server side of the handshake up to (not including) the final reply.
pub async fn accept<S>(s: &mut S) -> Result<Target, SocksError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut head = [0u8; 2];
    s.read_exact(&mut head).await?;
    if head[0] != VERSION {
        return Err(SocksError::BadVersion(head[0]));
    }
    let mut methods = vec![0u8; usize::from(head[1])];
    s.read_exact(&mut methods).await?;
    if !methods.contains(&NO_AUTH) {
        s.write_all(&[VERSION, NO_ACCEPTABLE]).await?;
        let _ = s.shutdown().await;
        return Err(SocksError::NoAcceptableMethod);
    }
    s.write_all(&[VERSION, NO_AUTH]).await?;

    let mut req = [0u8; 4];
    s.read_exact(&mut req).await?;
    let [ver, cmd, _rsv, atyp] = req;
    if ver != VERSION {
        return Err(SocksError::BadVersion(ver));
    }
    let host = match atyp {
        ATYP_V4 => {
            let mut a = [0u8; 4];
            s.read_exact(&mut a).await?;
            std::net::Ipv4Addr::from(a).to_string()
        }
        ATYP_V6 => {
            let mut a = [0u8; 16];
            s.read_exact(&mut a).await?;
            std::net::Ipv6Addr::from(a).to_string()
        }
        ATYP_DOMAIN => {
            let mut len = [0u8; 1];
            s.read_exact(&mut len).await?;
            let mut name = vec![0u8; usize::from(len[0])];
            s.read_exact(&mut name).await?;
            match String::from_utf8(name) {
                Ok(n) if !n.is_empty() => n,
                _ => {
                    reply(s, Reply::GeneralFailure).await?;
                    return Err(SocksError::BadDomain);
                }
            }
        }
        other => {
            reply(s, Reply::AddressTypeNotSupported).await?;
            return Err(SocksError::AddressTypeNotSupported(other));
        }
    };
    let mut port = [0u8; 2];
    s.read_exact(&mut port).await?;
    if cmd != CMD_CONNECT {
        reply(s, Reply::CommandNotSupported).await?;
        return Err(SocksError::CommandNotSupported(cmd));
    }
    Ok(Target {
        host,
        port: u16::from_be_bytes(port),
    })
}

/// Sends the final reply (bound address 0.0.0.0:0); after a failure it also closes our
/// sending side, so the client never waits for more.
pub async fn reply<S>(s: &mut S, code: Reply) -> std::io::Result<()>
where
    S: AsyncWrite + Unpin,
{
    s.write_all(&[VERSION, code as u8, 0, ATYP_V4, 0, 0, 0, 0, 0, 0])
        .await?;
    if code != Reply::Succeeded {
        let _ = s.shutdown().await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `accept` against `client_bytes`; returns its result and what it wrote back.
    async fn run(client_bytes: &[u8]) -> (Result<Target, SocksError>, Vec<u8>) {
        let (mut client, mut server) = tokio::io::duplex(1024);
        client.write_all(client_bytes).await.unwrap();
        client.shutdown().await.unwrap();
        let result = accept(&mut server).await;
        drop(server);
        let mut back = Vec::new();
        client.read_to_end(&mut back).await.unwrap();
        (result, back)
    }

    #[tokio::test]
    async fn ipv4_connect() {
        let (r, back) = run(&[5, 1, 0, 5, 1, 0, 1, 10, 0, 0, 7, 0x1F, 0x90]).await;
        assert_eq!(
            r.unwrap(),
            Target {
                host: "10.0.0.7".into(),
                port: 8080
            }
        );
        assert_eq!(back, [5, 0]);
    }

    #[tokio::test]
    async fn ipv6_connect() {
        let mut msg = vec![5, 2, 2, 0, 5, 1, 0, 4];
        msg.extend_from_slice(&std::net::Ipv6Addr::LOCALHOST.octets());
        msg.extend_from_slice(&443u16.to_be_bytes());
        let (r, back) = run(&msg).await;
        assert_eq!(
            r.unwrap(),
            Target {
                host: "::1".into(),
                port: 443
            }
        );
        assert_eq!(back, [5, 0]);
    }

    #[tokio::test]
    async fn domain_connect_is_passed_through_unresolved() {
        let mut msg = vec![5, 1, 0, 5, 1, 0, 3, 9];
        msg.extend_from_slice(b"localhost");
        msg.extend_from_slice(&80u16.to_be_bytes());
        let (r, _) = run(&msg).await;
        assert_eq!(
            r.unwrap(),
            Target {
                host: "localhost".into(),
                port: 80
            }
        );
    }

    #[tokio::test]
    async fn auth_only_clients_get_ff() {
        let (r, back) = run(&[5, 1, 2]).await;
        assert!(matches!(r, Err(SocksError::NoAcceptableMethod)));
        assert_eq!(back, [5, 0xFF]);
    }

    #[tokio::test]
    async fn bind_and_udp_get_07() {
        for cmd in [2u8, 3] {
            let (r, back) = run(&[5, 1, 0, 5, cmd, 0, 1, 127, 0, 0, 1, 0, 80]).await;
            assert!(matches!(r, Err(SocksError::CommandNotSupported(c)) if c == cmd));
            assert_eq!(back, [5, 0, 5, 7, 0, 1, 0, 0, 0, 0, 0, 0]);
        }
    }

    #[tokio::test]
    async fn unknown_address_type_gets_08() {
        let (r, back) = run(&[5, 1, 0, 5, 1, 0, 9]).await;
        assert!(matches!(r, Err(SocksError::AddressTypeNotSupported(9))));
        assert_eq!(back[2..4], [5, 8]);
    }

    #[tokio::test]
    async fn socks4_and_truncated_requests_fail_without_hanging() {
        let (r, back) = run(&[4, 1, 0, 80, 127, 0, 0, 1, 0]).await;
        assert!(matches!(r, Err(SocksError::BadVersion(4))));
        assert!(back.is_empty());
        let (r, _) = run(&[5, 1, 0, 5, 1]).await;
        assert!(matches!(r, Err(SocksError::Io(_))));
    }

    #[tokio::test]
    async fn failure_reply_closes() {
        let (mut client, mut server) = tokio::io::duplex(64);
        reply(&mut server, Reply::ConnectionRefused).await.unwrap();
        let mut back = Vec::new();
        client.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, [5, 5, 0, 1, 0, 0, 0, 0, 0, 0]);
    }
}
