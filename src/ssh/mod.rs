//! The russh client side: targets, authentication, host-key verification, `~/.ssh/config`
//! and exec. Only this module and `daemon` touch russh.

pub mod known_hosts;
pub mod ssh_config;
