//! The terminal-restoring hook a panic runs before the process exits.
//!
//! Below both faces: the CLI's `shell` and the dashboard arm it while the terminal is in raw
//! mode (or the alternate screen); the CLI's panic hook (`cli::output::install_panic_hook`)
//! runs it before printing the error, so a crash never leaves the user's terminal unusable.

use std::sync::Mutex;

/// The hook, if one is armed.
static ON_PANIC: Mutex<Option<Box<dyn Fn() + Send>>> = Mutex::new(None);

/// Registers (or clears) the hook a panic runs first, e.g. leaving raw mode.
pub fn set_panic_cleanup(hook: Option<Box<dyn Fn() + Send>>) {
    if let Ok(mut slot) = ON_PANIC.lock() {
        *slot = hook;
    }
}

/// Runs the armed hook, if any (called from the panic hook).
pub fn run_panic_cleanup() {
    if let Ok(slot) = ON_PANIC.lock() {
        if let Some(hook) = slot.as_ref() {
            hook();
        }
    }
}
