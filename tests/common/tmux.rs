//! Real terminals for the end-to-end terminal tests (dashboard, attach, shell, approvals,
//! MCP takeover): a private tmux server on its own socket, and panes that run `agentssh`
//! through a wrapper script with exactly a [`TestEnv`]'s variables.
//!
//! The wrapper records what a test asserts about a terminal after agentssh is gone: its pid
//! (for signals), its exit status and `stty -a` taken after it, with `BEFORE-<name>` and
//! `AFTER-<name>` printed on the normal screen around it.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{show_output, wait_until, TestEnv};

/// How long a pane gets to show something.
pub const PANE_WAIT: Duration = Duration::from_secs(20);

/// `s` as one single-quoted shell word.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// A private tmux server on its own socket (in a temp dir, removed with it), killed on drop
/// even when the test fails. Declare it after the fixtures it uses, so its panes go first.
pub struct Tmux {
    socket: PathBuf,
    dir: tempfile::TempDir,
}

impl Tmux {
    /// A server that starts with its first session.
    pub fn new() -> Tmux {
        let dir = tempfile::Builder::new()
            .prefix("astmux-")
            .tempdir()
            .unwrap();
        Tmux {
            socket: dir.path().join("tmux.sock"),
            dir,
        }
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-f", "/dev/null", "-S"])
            .arg(&self.socket)
            .stdin(Stdio::null());
        c
    }

    /// stdout of a tmux command that must succeed.
    pub fn run(&self, args: &[&str]) -> String {
        let out = self.cmd().args(args).output().expect("run tmux");
        assert!(
            out.status.success(),
            "tmux {args:?} failed: {}",
            show_output(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// stdout of a tmux command, or empty when it fails (e.g. no buffers yet).
    pub fn try_run(&self, args: &[&str]) -> String {
        match self.cmd().args(args).output() {
            Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
            _ => String::new(),
        }
    }

    /// Every paste buffer, with its contents (`tmux list-buffers` sample lines).
    pub fn buffers(&self) -> String {
        self.try_run(&["list-buffers", "-F", "#{buffer_name}: #{buffer_sample}"])
    }

    /// `agentssh ARGS` in a new detached session `name` of 120x40 (see [`Tmux::wrapper`]).
    pub fn agentssh(&self, env: &TestEnv, name: &str, args: &[&str]) -> Pane<'_> {
        self.start(name, &self.wrapper(env, name, args, &[]))
    }

    /// The dashboard (`agentssh` without arguments) in a new detached session `dash` of
    /// `cols`x`rows`.
    pub fn dashboard(&self, env: &TestEnv, cols: u16, rows: u16) -> Pane<'_> {
        self.start_sized("dash", &self.wrapper(env, "dash", &[], &[]), cols, rows)
    }

    /// Starts `script` in a new detached session `name` of 120x40.
    pub fn start(&self, name: &str, script: &Path) -> Pane<'_> {
        self.start_sized(name, script, 120, 40)
    }

    /// Starts `script` in a new detached session `name` of `cols`x`rows`.
    pub fn start_sized(&self, name: &str, script: &Path, cols: u16, rows: u16) -> Pane<'_> {
        self.run(&[
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            &cols.to_string(),
            "-y",
            &rows.to_string(),
            &script.display().to_string(),
        ]);
        Pane {
            tmux: self,
            name: name.to_string(),
            files: script.parent().unwrap().to_path_buf(),
        }
    }

    /// A wrapper script for one terminal named `name`, running `agentssh ARGS` in `env`'s
    /// home with exactly its variables plus `extra` (and the pane's TERM). It prints
    /// `BEFORE-<name>`, records agentssh's pid in `pid`, then its exit status in `exit` and
    /// `stty -a` in `stty`, prints `AFTER-<name>` and idles.
    pub fn wrapper(
        &self,
        env: &TestEnv,
        name: &str,
        args: &[&str],
        extra: &[(&str, &str)],
    ) -> PathBuf {
        let dir = self.dir.path().join(name);
        fs::create_dir_all(&dir).unwrap();
        let probe = {
            let mut c = env.cmd();
            c.arg("--version");
            c
        };
        let mut vars: Vec<String> = probe
            .get_envs()
            .filter_map(|(k, v)| {
                Some(format!(
                    "{}={}",
                    k.to_string_lossy(),
                    shell_quote(&v?.to_string_lossy())
                ))
            })
            .collect();
        vars.extend(extra.iter().map(|(k, v)| format!("{k}={}", shell_quote(v))));
        let q = |p: &Path| shell_quote(&p.display().to_string());
        let script = format!(
            "#!/bin/bash\n\
             cd {home}\n\
             echo BEFORE-{name}\n\
             ( echo $BASHPID > {pid}.tmp; mv {pid}.tmp {pid}; exec env -i {vars} TERM=\"$TERM\" {bin} {args} )\n\
             echo EXIT=$? > {exit}.tmp\n\
             stty -a > {stty} 2>&1\n\
             mv {exit}.tmp {exit}\n\
             echo AFTER-{name}\n\
             exec sleep 600\n",
            home = q(&env.home),
            pid = q(&dir.join("pid")),
            vars = vars.join(" "),
            bin = shell_quote(env!("CARGO_BIN_EXE_agentssh")),
            args = args
                .iter()
                .map(|a| shell_quote(a))
                .collect::<Vec<_>>()
                .join(" "),
            exit = q(&dir.join("exit")),
            stty = q(&dir.join("stty")),
        );
        let path = dir.join("run.sh");
        fs::write(&path, script).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        path
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

/// One terminal: a tmux session running a wrapper script (see [`Tmux::wrapper`]).
pub struct Pane<'a> {
    tmux: &'a Tmux,
    /// The tmux session's name.
    pub name: String,
    /// The wrapper's directory: `pid`, `exit`, `stty`.
    files: PathBuf,
}

impl Pane<'_> {
    /// The target that names exactly this session's pane.
    pub fn target(&self) -> String {
        format!("={}:", self.name)
    }

    /// The visible pane text (empty once the session is gone).
    pub fn capture(&self) -> String {
        self.tmux
            .try_run(&["capture-pane", "-p", "-t", &self.target()])
    }

    /// `tmux display -p FORMAT` for this pane.
    pub fn display(&self, format: &str) -> String {
        self.tmux
            .run(&["display", "-p", "-t", &self.target(), format])
            .trim_end()
            .to_string()
    }

    /// Named keys (`Enter`, `C-]`, `t`).
    pub fn keys(&self, keys: &[&str]) {
        let target = self.target();
        let mut args = vec!["send-keys", "-t", &target];
        args.extend_from_slice(keys);
        self.tmux.run(&args);
    }

    /// Literal text, as typed (no Enter).
    pub fn type_text(&self, text: &str) {
        self.tmux
            .run(&["send-keys", "-t", &self.target(), "-l", text]);
    }

    /// Literal text, then Enter.
    pub fn type_line(&self, text: &str) {
        self.type_text(text);
        self.keys(&["Enter"]);
    }

    /// Waits until the pane text satisfies `cond`; panics with the pane and `ctx` otherwise.
    pub fn wait(&self, ctx: &str, cond: impl Fn(&str) -> bool) {
        if !wait_until(PANE_WAIT, || cond(&self.capture())) {
            panic!(
                "pane `{}` never showed {ctx}:\n{}\n--- wrapper files ---\n{}",
                self.name,
                self.capture(),
                self.files_report()
            );
        }
    }

    /// Waits until the pane shows `text`; panics with the pane and `ctx` otherwise.
    pub fn wait_for(&self, text: &str, ctx: &str) {
        self.wait(&format!("{text:?} ({ctx})"), |pane| pane.contains(text));
    }

    /// Waits until some pane line, trimmed, equals `line` (full-width panes: attach).
    pub fn wait_for_line(&self, line: &str, ctx: &str) {
        self.wait(&format!("the line {line:?} ({ctx})"), |pane| {
            pane.lines().any(|l| l.trim() == line)
        });
    }

    fn files_report(&self) -> String {
        let mut s = String::new();
        for f in ["pid", "exit", "stty"] {
            s.push_str(&format!(
                "{f}: {}\n",
                fs::read_to_string(self.files.join(f)).unwrap_or_else(|_| "<none>".into())
            ));
        }
        s
    }

    /// The agentssh process's pid (the wrapper records it before exec'ing it).
    pub fn pid(&self) -> u32 {
        let file = self.files.join("pid");
        assert!(
            wait_until(PANE_WAIT, || fs::read_to_string(&file)
                .is_ok_and(|s| s.trim().parse::<u32>().is_ok())),
            "wrapper never recorded a pid:\n{}",
            self.capture()
        );
        let pid: u32 = fs::read_to_string(&file).unwrap().trim().parse().unwrap();
        // The subshell execs env, which execs agentssh: same pid.
        assert!(
            wait_until(PANE_WAIT, || fs::read_to_string(format!(
                "/proc/{pid}/comm"
            ))
            .is_ok_and(|c| c.trim() == "agentssh")),
            "pid {pid} never became agentssh"
        );
        pid
    }

    /// Waits for agentssh to exit; returns its exit status and `stty -a` taken after it.
    pub fn wait_exit(&self, ctx: &str) -> (i32, String) {
        let exit_file = self.files.join("exit");
        if !wait_until(PANE_WAIT, || exit_file.exists()) {
            panic!(
                "agentssh in pane `{}` did not exit ({ctx}):\n{}",
                self.name,
                self.capture()
            );
        }
        let status = fs::read_to_string(&exit_file).unwrap();
        let code = status
            .trim()
            .strip_prefix("EXIT=")
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("bad exit file: {status:?}"));
        let stty = fs::read_to_string(self.files.join("stty")).unwrap();
        (code, stty)
    }

    /// After agentssh exited: the terminal is in cooked mode with echo and signals, the
    /// alternate screen was left (the normal screen shows the wrapper's markers before and
    /// after agentssh), and nothing of agentssh's frames remains on it. Returns the exit
    /// status.
    pub fn assert_restored(&self, ctx: &str) -> i32 {
        let (code, stty) = self.wait_exit(ctx);
        let words: Vec<&str> = stty.split_whitespace().collect();
        for flag in ["icanon", "echo", "isig", "icrnl", "opost"] {
            assert!(
                words.contains(&flag) && !words.contains(&format!("-{flag}").as_str()),
                "{ctx}: terminal not restored: `{flag}` not set in stty -a (exit {code}):\n{stty}"
            );
        }
        let after = format!("AFTER-{}", self.name);
        self.wait_for(&after, ctx);
        let pane = self.capture();
        assert!(
            pane.contains(&format!("BEFORE-{}", self.name)),
            "{ctx}: the normal screen is not back (the marker printed before agentssh is \
             missing):\n{pane}"
        );
        assert_eq!(
            self.display("#{alternate_on}"),
            "0",
            "{ctx}: the pane is still on the alternate screen:\n{pane}"
        );
        code
    }
}
