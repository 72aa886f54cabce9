//! `agentssh demo`: a throwaway SSH server built into the binary, a private daemon and
//! config, and a scripted agent that drives the real CLI against them.
//!
//! - [`server`]: russh's server side on 127.0.0.1 (exec, PTY shells, SFTP, local forwards);
//!   the documented exception to "only daemon and ssh touch russh".
//! - `channel`, `pty`, `sftp`: what the server runs on each channel.
//! - [`setup`]: the private temp world and its teardown; [`agent`]: the scripted agent.
//!
//! `--headless` prints one NDJSON envelope per step and exits 0 only if all succeeded. The
//! interactive form opens the dashboard (a child process in the demo's environment) while the
//! agent runs in the background and waits for a human to answer the deploy prompt.

pub mod agent;
mod channel;
pub mod pty;
mod scripts;
pub mod server;
pub mod setup;
mod sftp;

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::cli::output::ok_envelope;
use crate::cli::Reply;
use crate::error::{Error, Result};
use agent::{Agent, Answer};
use setup::{Cleanup, DemoEnv};

/// How long the interactive agent waits for a human to answer the deploy prompt.
const HUMAN_WAIT: Duration = Duration::from_secs(3600);

/// The one-line hint the dashboard shows during the demo (keys from `tui::app`).
pub const BANNER: &str =
    "demo: select 'deploy' (j/k), take over (t), type y Enter, Ctrl-] then hand back (r) · q quits";

/// Runs the demo; `headless` runs the script without a terminal or dashboard.
pub fn run(headless: bool) -> Result<Reply> {
    if !headless {
        if crate::cli::output::json_mode() {
            return Err(Error::usage(
                "the interactive demo cannot run under --json; use demo --headless",
            ));
        }
        if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
            return Err(Error::usage(
                "the interactive demo needs a terminal; use demo --headless",
            ));
        }
    }
    let (demo, server) = DemoEnv::create()?;
    let cleanup = Arc::new(Cleanup::new(&demo, server));
    watch_signals(cleanup.clone())?;
    let code = if headless {
        headless_run(&demo, &cleanup)
    } else {
        interactive_run(&demo, &cleanup)?
    };
    // After a signal the main thread may get here first (its CLI call was killed): it must
    // end with the same code as the signal thread.
    Ok(Reply::streamed(cleanup.exit_code(code)))
}

/// The setup envelope: where the demo lives and how to reach it from another terminal.
fn setup_data(demo: &DemoEnv) -> serde_json::Value {
    json!({
        "step": "setup",
        "result": {
            "server": format!("127.0.0.1:{}", demo.port),
            "run_id": demo.run_id,
            "dir": demo.dir,
            "env": demo.env_line(),
            "try": format!("{} agentssh --json session list", demo.env_line()),
        }
    })
}

fn headless_run(demo: &DemoEnv, cleanup: &Cleanup) -> i32 {
    let mut agent = Agent::new(demo, Box::new(std::io::stdout()));
    agent.emit(&ok_envelope(setup_data(demo)));
    let ok = agent.run(Answer::Agent).is_ok();
    let clean = cleanup.run();
    let cleaned = clean.as_ref().is_some_and(|c| c["dir_removed"] == true);
    agent.emit(&ok_envelope(json!({"step": "cleanup", "result": clean})));
    if ok && cleaned {
        0
    } else {
        1
    }
}

fn interactive_run(demo: &DemoEnv, cleanup: &Cleanup) -> Result<i32> {
    let second = format!("{} agentssh --json session list", demo.env_line());
    println!(
        "agentssh demo: a private SSH server on 127.0.0.1:{}, a private daemon, three sessions.",
        demo.port
    );
    println!("Play the agent from a second terminal:\n  {second}");
    println!("{BANNER}");
    let log_path = demo.dir.join("agent.ndjson");
    let log = std::fs::File::create(&log_path)
        .map_err(|e| Error::local_io("cannot create the agent log", &e))?;
    let stop = Arc::new(AtomicBool::new(false));
    let mut dashboard = demo.agentssh()?;
    dashboard
        .arg("tui")
        .env("AGENTSSH_DASHBOARD_BANNER", BANNER);
    let (agent_ok, status) = std::thread::scope(|scope| {
        let stop2 = stop.clone();
        let agent = scope.spawn(move || {
            let mut agent = Agent::new(demo, Box::new(log)).with_stop(stop2);
            agent.emit(&ok_envelope(setup_data(demo)));
            agent.run(Answer::Human(HUMAN_WAIT)).is_ok()
        });
        let status = dashboard.status();
        stop.store(true, Ordering::SeqCst);
        let agent_ok = agent.join().unwrap_or(false);
        (agent_ok, status)
    });
    let summary = std::fs::read_to_string(&log_path).unwrap_or_default();
    let done = summary
        .lines()
        .filter(|l| l.starts_with("{\"ok\":true"))
        .count();
    cleanup.run();
    status.map_err(|e| Error::local_io("cannot run the dashboard", &e))?;
    println!(
        "agentssh demo: {done} agent steps succeeded{}; everything it started is gone.",
        if agent_ok {
            ", the deploy was answered"
        } else {
            ""
        }
    );
    Ok(0)
}

/// On SIGINT, SIGTERM or SIGHUP: clean up and exit 128+signal.
fn watch_signals(cleanup: Arc<Cleanup>) -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::internal(format!("cannot start the signal watcher: {e}")))?;
    let mut streams = Vec::new();
    for (kind, no) in [
        (SignalKind::interrupt(), 2),
        (SignalKind::terminate(), 15),
        (SignalKind::hangup(), 1),
    ] {
        // Registered here, before returning, so no signal can slip in unhandled.
        let s = rt
            .block_on(async { signal(kind) })
            .map_err(|e| Error::local_io("cannot watch signals", &e))?;
        streams.push((s, no));
    }
    std::thread::Builder::new()
        .name("agentssh-demo-signals".into())
        .spawn(move || {
            let no = rt.block_on(async move {
                let waits = streams.into_iter().map(|(mut s, no)| {
                    Box::pin(async move {
                        s.recv().await;
                        no
                    })
                });
                futures::future::select_all(waits).await.0
            });
            cleanup.interrupted(no);
            cleanup.run();
            std::process::exit(128 + no);
        })
        .map_err(|e| Error::internal(format!("cannot start the signal watcher: {e}")))?;
    Ok(())
}
