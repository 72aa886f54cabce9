//! `agentssh shell` in a real terminal: tmux runs it in a pane; we type into the remote
//! shell, read the pane, exit with a status, and check the terminal is sane afterwards.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

/// A private tmux server on its own socket (a unique path in a temp dir, like a unique
/// `-L` name but removed with the dir), killed on drop even when the test fails.
struct Tmux {
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmux {
    fn new() -> Tmux {
        let dir = tempfile::Builder::new()
            .prefix("astmux-")
            .tempdir()
            .unwrap();
        Tmux {
            socket: dir.path().join("tmux.sock"),
            _dir: dir,
        }
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-f", "/dev/null", "-S"])
            .arg(&self.socket)
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        let out = self.cmd().args(args).output().expect("run tmux");
        assert!(
            out.status.success(),
            "tmux {args:?} failed: {}",
            show_output(&out)
        );
        out
    }

    /// The visible pane text (empty once the session is gone).
    fn capture(&self) -> String {
        match self
            .cmd()
            .args(["capture-pane", "-p", "-t", "main"])
            .output()
        {
            Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
            _ => String::new(),
        }
    }

    fn send_line(&self, text: &str) {
        self.run(&["send-keys", "-t", "main", "-l", text]);
        self.run(&["send-keys", "-t", "main", "Enter"]);
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self
            .cmd()
            .arg("kill-server")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// A script that runs `agentssh shell` with exactly the TestEnv's environment (plus the
/// pane's TERM), then records its exit status and the terminal settings.
fn write_script(env: &TestEnv, sshd: &Sshd, dir: &Path) -> PathBuf {
    let probe = {
        let mut c = env.cmd();
        c.arg("--version");
        c
    };
    let vars: Vec<String> = probe
        .get_envs()
        .filter_map(|(k, v)| {
            let v = v?;
            Some(format!(
                "{}={}",
                k.to_string_lossy(),
                shell_quote(&v.to_string_lossy())
            ))
        })
        .collect();
    let bin = env!("CARGO_BIN_EXE_agentssh");
    let exit_file = dir.join("exit");
    let stty_file = dir.join("stty");
    let script = format!(
        "#!/bin/bash\n\
         cd {home}\n\
         env -i {vars} TERM=\"$TERM\" {bin} shell -H 127.0.0.1 -P {port} -u {user} --private-key-path {key}\n\
         echo EXIT=$? > {exit}.tmp\n\
         stty -a > {stty} 2>&1\n\
         mv {exit}.tmp {exit}\n\
         echo AFTER-SHELL\n\
         exec sleep 600\n",
        home = shell_quote(&env.home.display().to_string()),
        vars = vars.join(" "),
        bin = shell_quote(bin),
        port = sshd.port,
        user = TEST_USER,
        key = shell_quote(&env.key_path().display().to_string()),
        exit = shell_quote(&exit_file.display().to_string()),
        stty = shell_quote(&stty_file.display().to_string()),
    );
    let path = dir.join("run.sh");
    fs::write(&path, script).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// Whether some pane line, trimmed, ends with a shell prompt character.
fn has_prompt(pane: &str) -> bool {
    pane.lines()
        .map(str::trim_end)
        .any(|l| l.ends_with('$') && l.contains(TEST_USER))
}

#[test]
fn interactive_shell_in_tmux() {
    let env = TestEnv::new();
    let sshd = Sshd::start(&[env.client_pubkey()]);
    let dir = tempfile::Builder::new().prefix("ast-").tempdir().unwrap();
    let script = write_script(&env, &sshd, dir.path());
    let tmux = Tmux::new();
    tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "main",
        "-x",
        "120",
        "-y",
        "40",
        &script.display().to_string(),
    ]);

    let prompt = wait_until(Duration::from_secs(15), || has_prompt(&tmux.capture()));
    assert!(
        prompt,
        "no remote prompt in the pane:\n{}\n--- sshd log ---\n{}",
        tmux.capture(),
        sshd.log()
    );

    tmux.send_line("echo hello-$((6*7))");
    let echoed = wait_until(Duration::from_secs(10), || {
        tmux.capture().lines().any(|l| l.trim_end() == "hello-42")
    });
    assert!(echoed, "no hello-42 in the pane:\n{}", tmux.capture());

    // The remote side sees the pane's size.
    tmux.send_line("echo size=$(stty size)");
    let sized = wait_until(Duration::from_secs(10), || {
        tmux.capture()
            .lines()
            .any(|l| l.trim_end() == "size=40 120")
    });
    assert!(sized, "remote pty size is not 40x120:\n{}", tmux.capture());

    // A resize of the terminal reaches the remote pty (SIGWINCH forwarding).
    tmux.run(&["resize-window", "-t", "main", "-x", "100", "-y", "30"]);
    let resized = wait_until(Duration::from_secs(10), || {
        tmux.send_line("echo resized=$(stty size)");
        wait_until(Duration::from_millis(500), || {
            tmux.capture()
                .lines()
                .any(|l| l.trim_end() == "resized=30 100")
        })
    });
    assert!(
        resized,
        "remote pty was not resized to 30x100:\n{}",
        tmux.capture()
    );
    tmux.send_line("clear");
    assert!(
        wait_until(Duration::from_secs(10), || !tmux
            .capture()
            .contains("resized=")),
        "{}",
        tmux.capture()
    );

    tmux.send_line("exit 7");
    let exit_file = dir.path().join("exit");
    let exited = wait_until(Duration::from_secs(10), || exit_file.exists());
    assert!(
        exited,
        "agentssh shell did not exit after `exit 7`:\n{}",
        tmux.capture()
    );
    let status = fs::read_to_string(&exit_file).unwrap();
    assert_eq!(status.trim(), "EXIT=7", "pane:\n{}", tmux.capture());

    // The terminal is back in cooked mode with echo.
    let stty = fs::read_to_string(dir.path().join("stty")).unwrap();
    let words: Vec<&str> = stty.split_whitespace().collect();
    for flag in ["icanon", "echo", "isig", "icrnl", "opost"] {
        assert!(
            words.contains(&flag),
            "terminal not restored: `{flag}` missing in stty -a:\n{stty}"
        );
    }
    assert!(
        wait_until(Duration::from_secs(5), || tmux
            .capture()
            .contains("AFTER-SHELL")),
        "{}",
        tmux.capture()
    );
}

#[test]
fn shell_refuses_json_mode() {
    let env = TestEnv::new();
    let (v, rc) = env.json(&[
        "--json",
        "shell",
        "-H",
        "127.0.0.1",
        "-P",
        "1",
        "-u",
        TEST_USER,
    ]);
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["code"], "usage", "{v}");
    assert_eq!(rc, 2, "{v}");
}
