//! Local pseudo-terminals and child processes for the demo server.
//!
//! A PTY child is the user's shell (or a command) in a new session whose controlling terminal
//! is the slave side; the master side is wrapped in a non-blocking [`AsyncFd`] so the channel
//! task can read, write and resize it without threads. Every child of the demo server starts
//! a new session (`setsid`), so [`kill_session`] can find and end everything it started,
//! grandchildren included, by the session id in `/proc`.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::process::Stdio;

use tokio::io::unix::AsyncFd;

/// The master side of a PTY, non-blocking.
pub struct Master {
    fd: AsyncFd<OwnedFd>,
}

/// A freshly opened PTY pair.
pub struct Pair {
    /// Master side (ours).
    pub master: Master,
    /// Slave side (the child's stdio).
    pub slave: OwnedFd,
}

/// Opens a PTY of `cols` x `rows`.
pub fn open(cols: u16, rows: u16) -> io::Result<Pair> {
    let size = nix::pty::Winsize {
        ws_row: rows.max(1),
        ws_col: cols.max(1),
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = nix::pty::openpty(Some(&size), None).map_err(io::Error::from)?;
    let flags = rustix::fs::fcntl_getfl(&pty.master)?;
    rustix::fs::fcntl_setfl(&pty.master, flags | rustix::fs::OFlags::NONBLOCK)?;
    // SAFETY: an OwnedFd's raw fd is valid, open and the same for as long as it is owned.
    let fd = unsafe { AsyncFd::register(pty.master) }.map_err(|e| e.into_parts().1)?;
    Ok(Pair {
        master: Master { fd },
        slave: pty.slave,
    })
}

impl Master {
    /// Reads some bytes; `Ok(0)` once the slave side is gone (Linux reports EIO).
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut guard = self.fd.readable().await?;
            match guard
                .try_io(|fd| rustix::io::read(fd.get_ref(), &mut *buf).map_err(io::Error::from))
            {
                Ok(Err(e)) if e.raw_os_error() == Some(libc::EIO) => return Ok(0),
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }

    /// Writes all of `data`, waiting for room (the PTY's own buffer bounds it).
    pub async fn write_all(&self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let mut guard = self.fd.writable().await?;
            match guard.try_io(|fd| rustix::io::write(fd.get_ref(), data).map_err(io::Error::from))
            {
                Ok(Ok(n)) => data = &data[n..],
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
        Ok(())
    }

    /// Sets the window size (the kernel sends SIGWINCH to the foreground group).
    pub fn resize(&self, cols: u32, rows: u32) -> io::Result<()> {
        let clamp = |v: u32| u16::try_from(v).unwrap_or(u16::MAX).max(1);
        rustix::termios::tcsetwinsize(
            self.fd.get_ref(),
            rustix::termios::Winsize {
                ws_row: clamp(rows),
                ws_col: clamp(cols),
                ws_xpixel: 0,
                ws_ypixel: 0,
            },
        )?;
        Ok(())
    }

    /// The terminal's foreground process group (where terminal signals go).
    pub fn foreground_group(&self) -> Option<i32> {
        rustix::termios::tcgetpgrp(self.fd.get_ref())
            .ok()
            .map(|p| p.as_raw_nonzero().get())
    }
}

/// What to start in a child.
pub struct Spawn<'a> {
    /// The user's shell.
    pub shell: &'a Path,
    /// `Some(cmd)`: `shell -c cmd`; `None`: an interactive login-less shell.
    pub command: Option<&'a str>,
    /// Working directory and HOME of the child.
    pub home: &'a Path,
    /// Extra environment (after the inherited one).
    pub env: &'a [(String, String)],
}

fn command(spec: &Spawn<'_>) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(spec.shell);
    if let Some(c) = spec.command {
        cmd.arg("-c").arg(c);
    }
    cmd.current_dir(spec.home).env("HOME", spec.home);
    for (k, v) in spec.env {
        cmd.env(k, v);
    }
    cmd.kill_on_drop(true);
    cmd
}

/// Starts a child on the PTY slave `slave` as a session leader with it as controlling tty.
pub fn spawn_on_pty(
    spec: &Spawn<'_>,
    slave: &OwnedFd,
    term: &str,
) -> io::Result<tokio::process::Child> {
    let mut cmd = command(spec);
    cmd.env(
        "TERM",
        if term.is_empty() {
            "xterm-256color"
        } else {
            term
        },
    );
    cmd.stdin(Stdio::from(slave.as_fd().try_clone_to_owned()?))
        .stdout(Stdio::from(slave.as_fd().try_clone_to_owned()?))
        .stderr(Stdio::from(slave.as_fd().try_clone_to_owned()?));
    // SAFETY: only async-signal-safe calls (setsid, ioctl) run between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::ioctl(0, libc::TIOCSCTTY as _, 0) < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn()
}

/// Starts a child with piped stdio in a new session (so [`kill_session`] finds its children).
pub fn spawn_piped(spec: &Spawn<'_>) -> io::Result<tokio::process::Child> {
    let mut cmd = command(spec);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn()
}

/// Sends SIGHUP then SIGKILL to every process whose session id is `sid` (the children the demo
/// server started, and whatever they started in turn). Linux `/proc`; a no-op elsewhere.
pub fn kill_session(sid: i32) {
    if sid <= 1 {
        return;
    }
    for sig in [
        nix::sys::signal::Signal::SIGHUP,
        nix::sys::signal::Signal::SIGKILL,
    ] {
        for pid in session_members(sid) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
        }
    }
}

/// Pids of the processes in session `sid`.
pub fn session_members(sid: i32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| proc_session(*pid) == Some(sid))
        .collect()
}

/// Field 6 of `/proc/PID/stat` (the session id); the command name may hold spaces or ')'.
fn proc_session(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(3)?.parse().ok()
}

/// The signal a russh `Sig` names, for forwarding.
pub fn signal_of(sig: &russh::Sig) -> Option<nix::sys::signal::Signal> {
    use nix::sys::signal::Signal as S;
    Some(match sig {
        russh::Sig::ABRT => S::SIGABRT,
        russh::Sig::ALRM => S::SIGALRM,
        russh::Sig::FPE => S::SIGFPE,
        russh::Sig::HUP => S::SIGHUP,
        russh::Sig::ILL => S::SIGILL,
        russh::Sig::INT => S::SIGINT,
        russh::Sig::KILL => S::SIGKILL,
        russh::Sig::PIPE => S::SIGPIPE,
        russh::Sig::QUIT => S::SIGQUIT,
        russh::Sig::SEGV => S::SIGSEGV,
        russh::Sig::TERM => S::SIGTERM,
        russh::Sig::USR1 => S::SIGUSR1,
        russh::Sig::Custom(name) => match name.as_str() {
            "TSTP" => S::SIGTSTP,
            "USR2" => S::SIGUSR2,
            "CONT" => S::SIGCONT,
            "WINCH" => S::SIGWINCH,
            _ => return None,
        },
    })
}

/// The russh `Sig` for a signal number a child died of.
pub fn sig_of(signo: i32) -> russh::Sig {
    use nix::sys::signal::Signal as S;
    match S::try_from(signo) {
        Ok(S::SIGABRT) => russh::Sig::ABRT,
        Ok(S::SIGALRM) => russh::Sig::ALRM,
        Ok(S::SIGFPE) => russh::Sig::FPE,
        Ok(S::SIGHUP) => russh::Sig::HUP,
        Ok(S::SIGILL) => russh::Sig::ILL,
        Ok(S::SIGINT) => russh::Sig::INT,
        Ok(S::SIGKILL) => russh::Sig::KILL,
        Ok(S::SIGPIPE) => russh::Sig::PIPE,
        Ok(S::SIGQUIT) => russh::Sig::QUIT,
        Ok(S::SIGSEGV) => russh::Sig::SEGV,
        Ok(S::SIGTERM) => russh::Sig::TERM,
        Ok(S::SIGUSR1) => russh::Sig::USR1,
        Ok(other) => russh::Sig::Custom(other.as_str().trim_start_matches("SIG").to_string()),
        Err(_) => russh::Sig::Custom(signo.to_string()),
    }
}
