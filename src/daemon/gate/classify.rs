//! Which requests act on a server, and how: the gate's map of every path.
//!
//! [`classify`] matches every [`Request`] variant by name, with no catch-all arm, so a new
//! request cannot be added without deciding here whether and how it is gated (the compiler
//! refuses a missing arm). `tests/approvals.rs` then drives each acting path through the CLI
//! under a deny-everything policy and checks that nothing ran.

use crate::daemon::policy::Action;
use crate::protocol::Request;
use crate::wire::file::{FileAction, FileTarget};
use crate::wire::spec::ConnectSpec;

/// What a session request would do in the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionWork<'a> {
    /// An action on the session's server (a fresh exec channel, a file operation, a spawn).
    Act(Action),
    /// Text typed into the PTY, in order (`session send`'s input, then its responses):
    /// checked line by line together with what was typed before on the same line.
    Type {
        /// The input, then each response.
        chunks: Vec<&'a str>,
        /// Whether the responses are hidden in the approval (they may be passwords).
        hidden_from: usize,
    },
    /// A whole command line typed at the prompt (`session run`, a job).
    Line(&'a str),
}

/// How the gate treats a request.
#[derive(Debug, Clone)]
pub enum Scope<'a> {
    /// It does not act on a server (reads, status, closing our own things, signals).
    Free,
    /// Only the human may do it: refused for clients of the agent uid.
    HumanOnly,
    /// It acts on the server of a connect spec.
    Spec {
        /// Where.
        spec: &'a ConnectSpec,
        /// The request's name, for the approval (`exec`, `connect`, `file write`, ...).
        what: String,
        /// What it does there.
        action: Action,
    },
    /// It acts in (or on the server of) an existing session.
    Session {
        /// Session id or name.
        session: &'a str,
        /// The request's name.
        what: String,
        /// What it does there.
        work: SessionWork<'a>,
    },
}

fn file_action(a: &FileAction) -> Action {
    match a {
        FileAction::Download { remote, .. }
        | FileAction::Ls { remote }
        | FileAction::Read { remote, .. } => Action::FileRead(remote.clone()),
        FileAction::Upload { remote, .. }
        | FileAction::Write { remote, .. }
        | FileAction::Edit { remote, .. }
        | FileAction::Delete { remote, .. }
        | FileAction::Mkdir { remote, .. } => Action::FileWrite(remote.clone()),
    }
}

/// The command's name as the approval shows it, with `--detach` when it was given.
fn with_detach(command: &str, detach: bool) -> String {
    match detach {
        true => format!("{command} --detach"),
        false => command.to_string(),
    }
}

/// How the gate treats `request` (see the module docs).
pub fn classify(request: &Request) -> Scope<'_> {
    match request {
        Request::Exec { spec, command, .. } => Scope::Spec {
            spec,
            what: "exec".into(),
            action: Action::Command(command.clone()),
        },
        Request::Authorize {
            spec,
            command: Some(command),
        } => Scope::Spec {
            spec,
            what: "exec --direct".into(),
            action: Action::Command(command.clone()),
        },
        // An interactive shell: the human (or agent) at it types freely, like a connect.
        Request::Authorize {
            spec,
            command: None,
        } => Scope::Spec {
            spec,
            what: "shell".into(),
            action: Action::Connect,
        },
        Request::Connect { spec, .. } => Scope::Spec {
            spec,
            what: "connect".into(),
            action: Action::Connect,
        },
        Request::ProxyCreate { spec, forward, .. } => Scope::Spec {
            spec,
            what: "proxy create".into(),
            action: Action::Forward(forward.describe()),
        },
        Request::File(f) => {
            let what = format!("file {}", f.action.name());
            let action = file_action(&f.action);
            match &f.target {
                FileTarget::Spec { spec, .. } => Scope::Spec { spec, what, action },
                FileTarget::Session { session } => Scope::Session {
                    session,
                    what,
                    work: SessionWork::Act(action),
                },
            }
        }
        // A new PTY (and shell) on the session's connection.
        Request::Spawn { from, .. } => Scope::Session {
            session: from,
            what: "session spawn".into(),
            work: SessionWork::Act(Action::Connect),
        },
        Request::Send(s) => {
            let mut chunks = vec![s.input.as_str()];
            chunks.extend(s.expect.iter().map(|(_, respond)| respond.as_str()));
            Scope::Session {
                session: &s.session,
                what: "session send".into(),
                work: SessionWork::Type {
                    chunks,
                    hidden_from: 1,
                },
            }
        }
        Request::SessionExec {
            session,
            command,
            detach,
            ..
        } => Scope::Session {
            session,
            what: with_detach("session exec", *detach),
            work: if *detach {
                SessionWork::Line(command)
            } else {
                SessionWork::Act(Action::Command(command.clone()))
            },
        },
        Request::Run {
            session,
            command,
            detach,
            ..
        } => Scope::Session {
            session,
            what: with_detach("session run", *detach),
            work: SessionWork::Line(command),
        },
        // Taking control makes the caller the human at the keyboard; deciding approvals is
        // the human's alone, and so is deleting the recordings that audit the agents.
        Request::Watch {
            take_control: true, ..
        }
        | Request::ApprovalDecide { .. }
        | Request::RecordingDelete { .. } => Scope::HumanOnly,
        Request::Watch {
            take_control: false,
            ..
        }
        | Request::Status
        | Request::Shutdown
        | Request::Read { .. }
        | Request::Screen { .. }
        | Request::Job { .. }
        | Request::Resize { .. }
        // Stopping things is never gated: a signal can only interrupt what already runs.
        | Request::Signal { .. }
        | Request::Ping { .. }
        | Request::Wait { .. }
        | Request::Ask { .. }
        | Request::Dismiss { .. }
        | Request::History { .. }
        | Request::SessionStatus { .. }
        | Request::SessionList
        | Request::Close { .. }
        | Request::Events
        | Request::ProxyList
        | Request::ProxyPing { .. }
        | Request::ProxyClose { .. }
        | Request::Log { .. }
        | Request::RecordingList
        | Request::RecordingLocate { .. }
        | Request::ApprovalList
        | Request::ApprovalStatus { .. } => Scope::Free,
    }
}

/// What typing `chunks` after `pending` (the text already on the line) does: the lines it
/// submits (Enter: CR or LF) and the text left on the line. Ctrl-C and Ctrl-U clear the line
/// as the shells' line editors do.
pub fn typed_lines(pending: &str, chunks: &[&str]) -> (Vec<String>, String) {
    let mut lines = Vec::new();
    let mut line = pending.to_string();
    for chunk in chunks {
        for c in chunk.chars() {
            match c {
                '\r' | '\n' => lines.push(std::mem::take(&mut line)),
                '\u{3}' | '\u{15}' => line.clear(),
                c => line.push(c),
            }
        }
    }
    (lines, line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_lines_follow_enter_and_line_kills() {
        assert_eq!(
            typed_lines("", &["ls -l\n"]),
            (vec!["ls -l".to_string()], String::new())
        );
        assert_eq!(
            typed_lines("rm -r", &["f /x\r\n"]),
            (vec!["rm -rf /x".to_string(), String::new()], String::new())
        );
        assert_eq!(
            typed_lines("", &["rm -rf /", "\u{3}ls\n"]),
            (vec!["ls".to_string()], String::new())
        );
        assert_eq!(typed_lines("", &["echo "]), (vec![], "echo ".to_string()));
    }
}
