//! Stable error codes and the crate's error type.
//!
//! Every failure a user can see carries an [`ErrorCode`]: the snake_case string agents match
//! on (documented in README.md) and the process exit code it maps to. Codes are never renamed.

use serde::{Deserialize, Serialize};

/// A stable, machine-readable error code (see CLI.md and README.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Bad flags, arguments or input.
    Usage,
    /// A named profile does not exist.
    ProfileNotFound,
    /// TCP connect or SSH handshake failed.
    ConnectFailed,
    /// A deadline passed (connect, command or wait).
    Timeout,
    /// The server refused every authentication method we tried.
    AuthFailed,
    /// The server's host key is not known and the policy forbids learning it.
    HostKeyUnknown,
    /// The server's host key differs from the recorded one (or is revoked).
    HostKeyChanged,
    /// No session with that id.
    SessionNotFound,
    /// The session exists but is closed.
    SessionClosed,
    /// A human holds the session; agents may only read.
    SessionTakenOver,
    /// A `session run` is in flight in the session; agents may only read until it ends.
    SessionBusy,
    /// A human (or a `deny` rule of the approval policy) refused the action; nothing ran.
    ApprovalDenied,
    /// Nobody answered the approval request in time; nothing ran.
    ApprovalTimeout,
    /// `--no-wait`: the action waits for a human; poll `approvals status ID`.
    ApprovalPending,
    /// No proxy with that id.
    ProxyNotFound,
    /// A local address is already bound.
    AddressInUse,
    /// A remote file operation failed.
    RemoteIo,
    /// A file, path or pattern was not found.
    NotFound,
    /// The OS or server denied access.
    PermissionDenied,
    /// The daemon could not be reached or started.
    DaemonUnavailable,
    /// Client and daemon speak different protocol versions.
    VersionMismatch,
    /// A local I/O failure (reading a key, writing a file).
    LocalIo,
    /// A bug: something that should not happen.
    Internal,
}

impl ErrorCode {
    /// The code as it appears in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Usage => "usage",
            ErrorCode::ProfileNotFound => "profile_not_found",
            ErrorCode::ConnectFailed => "connect_failed",
            ErrorCode::Timeout => "timeout",
            ErrorCode::AuthFailed => "auth_failed",
            ErrorCode::HostKeyUnknown => "host_key_unknown",
            ErrorCode::HostKeyChanged => "host_key_changed",
            ErrorCode::SessionNotFound => "session_not_found",
            ErrorCode::SessionClosed => "session_closed",
            ErrorCode::SessionTakenOver => "session_taken_over",
            ErrorCode::SessionBusy => "session_busy",
            ErrorCode::ApprovalDenied => "approval_denied",
            ErrorCode::ApprovalTimeout => "approval_timeout",
            ErrorCode::ApprovalPending => "approval_pending",
            ErrorCode::ProxyNotFound => "proxy_not_found",
            ErrorCode::AddressInUse => "address_in_use",
            ErrorCode::RemoteIo => "remote_io",
            ErrorCode::NotFound => "not_found",
            ErrorCode::PermissionDenied => "permission_denied",
            ErrorCode::DaemonUnavailable => "daemon_unavailable",
            ErrorCode::VersionMismatch => "version_mismatch",
            ErrorCode::LocalIo => "local_io",
            ErrorCode::Internal => "internal",
        }
    }

    /// The process exit code for this error (CLI.md: 124 timeout, 255 transport, 2 usage).
    pub fn exit_code(self) -> i32 {
        match self {
            ErrorCode::Usage => 2,
            ErrorCode::Timeout | ErrorCode::ApprovalTimeout => 124,
            ErrorCode::ConnectFailed
            | ErrorCode::AuthFailed
            | ErrorCode::HostKeyUnknown
            | ErrorCode::HostKeyChanged => 255,
            _ => 1,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error a user sees: a code plus one sentence, and optionally partial results.
#[derive(Debug, Clone, thiserror::Error, Serialize, Deserialize, PartialEq, Eq)]
#[error("{message}")]
pub struct Error {
    /// The stable code.
    pub code: ErrorCode,
    /// A sentence saying what went wrong and, where it helps, what to do.
    pub message: String,
    /// What was already known when it failed (e.g. output before a timeout): the `data` of
    /// the error envelope. Not serialized with the error itself: the daemon moves it into
    /// `Response::Err { data }` (`daemon::server::error_response`), the CLI into the envelope.
    #[serde(skip)]
    pub data: Option<Box<serde_json::Value>>,
}

impl Error {
    /// Builds an error from a code and a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// Attaches partial results, shown as the error envelope's `data`.
    pub fn with_data(mut self, data: serde_json::Value) -> Self {
        self.data = Some(Box::new(data));
        self
    }

    /// Takes the attached partial results out of the error.
    pub fn take_data(&mut self) -> Option<serde_json::Value> {
        self.data.take().map(|b| *b)
    }

    /// Shorthand for [`ErrorCode::Usage`].
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Usage, message)
    }

    /// Shorthand for [`ErrorCode::Internal`].
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, message)
    }

    /// A local I/O error about `what` (a path or an action).
    pub fn local_io(what: impl std::fmt::Display, err: &std::io::Error) -> Self {
        let code = match err.kind() {
            std::io::ErrorKind::NotFound => ErrorCode::NotFound,
            std::io::ErrorKind::PermissionDenied => ErrorCode::PermissionDenied,
            _ => ErrorCode::LocalIo,
        };
        Self::new(code, format!("{what}: {err}"))
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_rides_along_but_not_in_the_serialized_error() {
        let mut e = Error::new(ErrorCode::Timeout, "late").with_data(serde_json::json!({"x": 1}));
        // The wire carries data beside the error (`Response::Err { data }`), never twice.
        let wire = serde_json::to_value(&e).unwrap();
        assert_eq!(
            wire,
            serde_json::json!({"code": "timeout", "message": "late"})
        );
        assert_eq!(e.take_data(), Some(serde_json::json!({"x": 1})));
        assert_eq!(e.take_data(), None);
    }
}
