//! Driver of `bench/mcp.sh` with the official Rust MCP SDK's client (`rmcp`, as Rust agents
//! such as OpenAI's Codex CLI use it): sequential `exec true` tool calls through ONE
//! `agentssh mcp` process against `ssh` with a warm ControlMaster (timed by `hyperfine -N`),
//! interleaved in rounds so both see the same machine.
//!
//! ```text
//! mcp_bench_client AGENTSSH PROFILE CALLS ROUNDS WARMUP WORKDIR -- SSH_COMMAND...
//! ```
//!
//! Prints one JSON object: the medians (and 90th percentiles) of both, in milliseconds, and
//! the median of as many `session_list` calls (the MCP path without SSH). The
//! MCP times are taken around `call_tool`, so they include this client's own JSON-RPC work as
//! well as the server's, the daemon's and sshd's. `bench/mcp_driver.py` does the same with the
//! official Python SDK.

use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use rmcp::model::CallToolRequestParams;
use rmcp::transport::async_rw::AsyncRwTransport;
use rmcp::ServiceExt;
use serde_json::json;

/// What the command line says.
struct Args {
    binary: String,
    profile: String,
    calls: usize,
    rounds: usize,
    warmup: usize,
    work: String,
    ssh: Vec<String>,
}

fn parse_args() -> Result<Args> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let sep = argv.iter().position(|a| a == "--").context(
        "usage: mcp_bench_client AGENTSSH PROFILE CALLS ROUNDS WARMUP WORKDIR -- SSH...",
    )?;
    let [binary, profile, calls, rounds, warmup, work] = &argv[..sep] else {
        bail!("expected six arguments before --");
    };
    Ok(Args {
        binary: binary.clone(),
        profile: profile.clone(),
        calls: calls.parse()?,
        rounds: rounds.parse::<usize>()?.max(1),
        warmup: warmup.parse()?,
        work: work.clone(),
        ssh: argv[sep + 1..].to_vec(),
    })
}

/// The value below which `q` (0..=1) of the sorted `v` lie (nearest rank).
fn quantile(v: &[f64], q: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        return f64::NAN;
    }
    if q == 0.5 && s.len().is_multiple_of(2) {
        let m = s.len() / 2;
        return (s[m - 1] + s[m]) / 2.0;
    }
    let rank = ((q * s.len() as f64).ceil() as usize).clamp(1, s.len());
    s[rank - 1]
}

/// `n` timed runs of the ssh command through hyperfine, in milliseconds.
fn ssh_round(a: &Args, round: usize, n: usize) -> Result<Vec<f64>> {
    let out = format!("{}/ssh-rust-r{round}.json", a.work);
    let status = Command::new("hyperfine")
        .args(["-N", "--style", "none", "--warmup", &a.warmup.to_string()])
        .args(["--runs", &n.to_string(), "--export-json", &out, "--"])
        .arg(a.ssh.join(" "))
        .stdout(Stdio::null())
        .status()
        .context("cannot run hyperfine")?;
    if !status.success() {
        bail!("hyperfine failed: {status}");
    }
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&out)?)?;
    let times = report["results"][0]["times"]
        .as_array()
        .context("hyperfine export without times")?;
    Ok(times
        .iter()
        .filter_map(serde_json::Value::as_f64)
        .map(|t| t * 1000.0)
        .collect())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let a = parse_args()?;
    let mut child = tokio::process::Command::new(&a.binary)
        .args(["mcp", "--profile", &a.profile, "--tools", "exec,sessions"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("cannot start agentssh mcp")?;
    let (Some(stdout), Some(stdin)) = (child.stdout.take(), child.stdin.take()) else {
        bail!("agentssh mcp without piped stdio");
    };
    let client =
        ().serve(AsyncRwTransport::new_client(stdout, stdin))
            .await
            .context("MCP initialize failed")?;
    let exec_args = json!({ "profile": a.profile, "command": "true" });
    let exec = CallToolRequestParams::new("exec").with_arguments(
        exec_args
            .as_object()
            .context("arguments are an object")?
            .clone(),
    );
    for _ in 0..a.warmup {
        let r = client.call_tool(exec.clone()).await?;
        if r.is_error == Some(true) {
            bail!("warm-up exec failed: {r:?}");
        }
    }
    let per_round = a.calls.div_ceil(a.rounds);
    let (mut mcp_ms, mut ssh_ms, mut errors) = (Vec::new(), Vec::new(), 0usize);
    for round in 0..a.rounds {
        let n = per_round.min(a.calls - mcp_ms.len());
        // ssh first in even rounds, MCP first in odd ones.
        for ssh_turn in [round % 2 == 0, round % 2 == 1] {
            if ssh_turn {
                ssh_ms.extend(ssh_round(&a, round, n)?);
                continue;
            }
            for _ in 0..n {
                let t0 = Instant::now();
                let r = client.call_tool(exec.clone()).await?;
                mcp_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
                let status = r.structured_content.as_ref().map(|s| &s["exit_status"]);
                if r.is_error == Some(true) || status != Some(&json!(0)) {
                    errors += 1;
                }
            }
        }
    }
    // The MCP path without SSH: the same client, server and daemon hop for a tool call
    // that needs no remote work.
    let list = CallToolRequestParams::new("session_list");
    let mut floor_ms = Vec::with_capacity(a.calls);
    for _ in 0..a.calls {
        let t0 = Instant::now();
        let r = client.call_tool(list.clone()).await?;
        floor_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
        if r.is_error == Some(true) {
            errors += 1;
        }
    }
    client.cancel().await.ok();
    let _ = child.wait().await;
    println!(
        "{}",
        json!({
            "calls": mcp_ms.len(),
            "ssh_runs": ssh_ms.len(),
            "errors": errors,
            "mcp_median_ms": quantile(&mcp_ms, 0.5),
            "mcp_p90_ms": quantile(&mcp_ms, 0.9),
            "ssh_median_ms": quantile(&ssh_ms, 0.5),
            "ssh_p90_ms": quantile(&ssh_ms, 0.9),
            "floor_median_ms": quantile(&floor_ms, 0.5),
        })
    );
    Ok(())
}
