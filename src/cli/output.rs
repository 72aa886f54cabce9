//! What the CLI prints: JSON envelopes or text, and the guarantee that under `--json` stdout
//! holds exactly one valid document (NDJSON lines for streams) whatever happens, panics
//! included.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{json, Value};

use crate::error::Error;

static JSON_MODE: AtomicBool = AtomicBool::new(false);
/// Set once a single-document reply is on stdout, so a late panic cannot add a second one.
static DOCUMENT_PRINTED: AtomicBool = AtomicBool::new(false);

/// Selects JSON or text output for this process.
pub fn set_json_mode(on: bool) {
    JSON_MODE.store(on, Ordering::SeqCst);
}

/// Whether `--json` / `--output json` is in force.
pub fn json_mode() -> bool {
    JSON_MODE.load(Ordering::SeqCst)
}

fn write_line(line: &str) {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    // A closed pipe (`| head`) is the reader's choice, not our error.
    let _ = out.write_all(line.as_bytes());
    let _ = out.write_all(b"\n");
    let _ = out.flush();
}

/// The success envelope.
pub fn ok_envelope(data: Value) -> Value {
    json!({"ok": true, "data": data})
}

/// The failure envelope; `data` carries partial results (e.g. output before a timeout).
pub fn err_envelope(err: &Error, data: Option<Value>) -> Value {
    let mut v = json!({"ok": false, "error": err.message, "code": err.code.as_str()});
    if let (Some(d), Some(obj)) = (data, v.as_object_mut()) {
        obj.insert("data".into(), d);
    }
    v
}

/// Prints the single JSON document of this invocation (no-op if one was already printed).
pub fn print_document(v: &Value) {
    if DOCUMENT_PRINTED.swap(true, Ordering::SeqCst) {
        return;
    }
    write_line(&v.to_string());
}

/// Prints one NDJSON line of a stream.
pub fn print_stream_line(v: &Value) {
    write_line(&v.to_string());
}

/// Reports `err`: the JSON envelope, or `agentssh: <message>` on stderr in text mode.
pub fn report_error(err: &Error, data: Option<Value>) {
    if json_mode() {
        print_document(&err_envelope(err, data));
    } else {
        eprintln!("agentssh: {}", err.message);
    }
}

/// Installs the panic hook: restore the terminal, print an `internal` envelope (JSON mode)
/// or a short message, and exit 1. Panics in any thread end the process cleanly.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        crate::panic_cleanup::run_panic_cleanup();
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let err = Error::internal(format!("internal error (a bug in agentssh): {what}{place}"));
        tracing::error!("{}", err.message);
        report_error(&err, None);
        std::process::exit(1);
    }));
}

/// Best-effort detection of JSON mode from raw argv, for errors that happen before (or
/// inside) argument parsing. Stops at `--`, after which words belong to the remote command.
pub fn argv_wants_json(args: &[std::ffi::OsString]) -> bool {
    let mut it = args.iter().skip(1).map(|a| a.to_string_lossy());
    let mut wants = false;
    while let Some(a) = it.next() {
        match a.as_ref() {
            "--" => break,
            "--json" => wants = true,
            "--output" => wants = it.next().is_some_and(|v| v == "json"),
            "--output=json" => wants = true,
            s if s.starts_with("--output=") => wants = false,
            _ => {}
        }
    }
    wants
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<std::ffi::OsString> {
        std::iter::once("agentssh")
            .chain(words.iter().copied())
            .map(Into::into)
            .collect()
    }

    #[test]
    fn json_detection_respects_double_dash() {
        assert!(argv_wants_json(&argv(&["--json", "exec"])));
        assert!(argv_wants_json(&argv(&["exec", "--output", "json"])));
        assert!(argv_wants_json(&argv(&["exec", "--output=json"])));
        assert!(!argv_wants_json(&argv(&["exec", "--", "--json"])));
        assert!(!argv_wants_json(&argv(&["--json", "--output", "text"])));
    }

    #[test]
    fn error_envelope_has_code_and_optional_data() {
        let e = Error::new(crate::error::ErrorCode::Timeout, "late");
        let v = err_envelope(&e, Some(json!({"stdout": "x"})));
        assert_eq!(v["ok"], false);
        assert_eq!(v["code"], "timeout");
        assert_eq!(v["data"]["stdout"], "x");
    }
}
