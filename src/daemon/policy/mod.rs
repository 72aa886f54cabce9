//! The approval policy (issue 16): which actions on which targets run at once, wait for a
//! human, or are refused.
//!
//! - [`file`]: `policy.toml`, parsed into typed rules, and a [`file::Loader`] that follows it.
//! - [`shell`]: a shell tokenizer that tells a whole simple command from anything with control
//!   syntax, so `allow` rules cannot be fooled by `uname; rm -rf /` or `ls $(sudo id)`.
//! - [`decide`]: one function from (policy, target, action) to a [`decide::Decision`].
//!
//! The gate in front of requests is not wired yet; `agentssh policy check` uses this code.

pub mod decide;
pub mod file;
pub mod shell;

pub use decide::{decide, Action, Decision, Target};
pub use file::{Loader, Policy, PolicyError, Verdict};

#[cfg(test)]
mod tests;
