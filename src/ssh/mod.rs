//! The russh client side: targets, authentication, host-key verification, `~/.ssh/config`
//! and exec. Only this module and `daemon` touch russh.

pub mod auth;
pub mod client;
pub mod exec;
pub mod exec_outcome;
pub mod exec_stop;
pub mod forward;
pub mod known_hosts;
pub mod ssh_config;
