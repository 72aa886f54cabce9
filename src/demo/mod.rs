//! `agentssh demo`: a throwaway SSH server built into the binary, a private daemon and
//! config, and a scripted agent that drives the real CLI against them.
//!
//! - [`server`]: russh's server side on 127.0.0.1 (exec, PTY shells, SFTP, local forwards);
//!   the documented exception to "only daemon and ssh touch russh".
//! - `channel`, `pty`, `sftp`: what the server runs on each channel.

mod channel;
pub mod pty;
pub mod server;
mod sftp;
