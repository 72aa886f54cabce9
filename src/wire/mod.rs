//! The plain data the wire carries, below both the faces and the daemon.
//!
//! Part of the client–daemon contract: [`crate::protocol`] embeds these types in its requests,
//! so changing one changes the wire format. They hold no I/O and import no implementation
//! module (`ssh`, `sftp`, `daemon`, the faces); `ssh` and `sftp` take them as input.

pub mod approval;
pub mod file;
pub mod spec;
