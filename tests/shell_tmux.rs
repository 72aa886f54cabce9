//! `agentssh shell` in a real terminal: tmux runs it in a pane; we type into the remote
//! shell, read the pane, exit with a status, and check the terminal is sane afterwards.

mod common;

use std::time::Duration;

use common::tmux::Tmux;
use common::*;

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
    let port = sshd.port.to_string();
    let key = env.key_path().display().to_string();
    let tmux = Tmux::new();
    let pane = tmux.agentssh(
        &env,
        "main",
        &[
            "shell",
            "-H",
            "127.0.0.1",
            "-P",
            &port,
            "-u",
            TEST_USER,
            "--private-key-path",
            &key,
        ],
    );

    let prompt = wait_until(Duration::from_secs(15), || has_prompt(&pane.capture()));
    assert!(
        prompt,
        "no remote prompt in the pane:\n{}\n--- sshd log ---\n{}",
        pane.capture(),
        sshd.log()
    );

    pane.type_line("echo hello-$((6*7))");
    let echoed = wait_until(Duration::from_secs(10), || {
        pane.capture().lines().any(|l| l.trim_end() == "hello-42")
    });
    assert!(echoed, "no hello-42 in the pane:\n{}", pane.capture());

    // The remote side sees the pane's size.
    pane.type_line("echo size=$(stty size)");
    let sized = wait_until(Duration::from_secs(10), || {
        pane.capture()
            .lines()
            .any(|l| l.trim_end() == "size=40 120")
    });
    assert!(sized, "remote pty size is not 40x120:\n{}", pane.capture());

    // A resize of the terminal reaches the remote pty (SIGWINCH forwarding).
    tmux.run(&["resize-window", "-t", "main", "-x", "100", "-y", "30"]);
    let resized = wait_until(Duration::from_secs(10), || {
        pane.type_line("echo resized=$(stty size)");
        wait_until(Duration::from_millis(500), || {
            pane.capture()
                .lines()
                .any(|l| l.trim_end() == "resized=30 100")
        })
    });
    assert!(
        resized,
        "remote pty was not resized to 30x100:\n{}",
        pane.capture()
    );
    pane.type_line("clear");
    assert!(
        wait_until(Duration::from_secs(10), || !pane
            .capture()
            .contains("resized=")),
        "{}",
        pane.capture()
    );

    pane.type_line("exit 7");
    let (code, stty) = pane.wait_exit("after `exit 7`");
    assert_eq!(code, 7, "pane:\n{}", pane.capture());

    // The terminal is back in cooked mode with echo.
    let words: Vec<&str> = stty.split_whitespace().collect();
    for flag in ["icanon", "echo", "isig", "icrnl", "opost"] {
        assert!(
            words.contains(&flag),
            "terminal not restored: `{flag}` missing in stty -a:\n{stty}"
        );
    }
    pane.wait_for("AFTER-main", "the wrapper's marker after agentssh");
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
