//! `agentssh file ...` against a real OpenSSH sshd on this machine: SFTP and the exec
//! fallback (an sshd without an SFTP subsystem), through the daemon and `--direct`.
//!
//! The "remote" side is this same machine, logged in as `agentssh-test`; each test works in
//! its own directory under /tmp owned by that user, and checks results on disk directly.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, UNIX_EPOCH};

use base64::Engine;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use rand::RngCore;
use rstest::rstest;
use serde_json::Value;
use sha2::{Digest, Sha256};

use common::*;

/// Deadline for commands moving 100 MB.
const BIG_DEADLINE: Duration = Duration::from_secs(300);

/// How a command reaches the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    Daemon,
    Direct,
}

/// One test's world: a client env, an sshd (with or without SFTP) and a remote work dir.
struct Fx {
    env: TestEnv,
    sshd: Sshd,
    /// Remote work dir (owned by the test user); removed on drop.
    dir: tempfile::TempDir,
}

fn test_user_ids() -> (nix::unistd::Uid, nix::unistd::Gid) {
    let u = nix::unistd::User::from_name(TEST_USER)
        .expect("look up the test user")
        .expect("the test user exists (scripts/test-setup.sh)");
    (u.uid, u.gid)
}

/// Hands `path` to the test user.
fn give(path: &Path) {
    let (uid, gid) = test_user_ids();
    std::os::unix::fs::lchown(path, Some(uid.as_raw()), Some(gid.as_raw()))
        .unwrap_or_else(|e| panic!("chown {path:?}: {e}"));
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn mode_of(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

impl Fx {
    fn new(sftp: bool) -> Fx {
        let env = TestEnv::new();
        let sshd = Sshd::start_with(SshdOptions {
            sftp,
            authorized_keys: vec![env.client_pubkey()],
            ..SshdOptions::default()
        });
        env.trust_host(&sshd);
        let dir = tempfile::Builder::new()
            .prefix("agentssh-files-")
            .tempdir_in("/tmp")
            .unwrap();
        chmod(dir.path(), 0o755);
        give(dir.path());
        Fx { env, sshd, dir }
    }

    /// A path in the remote work dir.
    fn r(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// `r(rel)` as a string.
    fn rs(&self, rel: &str) -> String {
        self.r(rel).display().to_string()
    }

    /// A local scratch path (in the client env, owned by us).
    fn l(&self, rel: &str) -> PathBuf {
        self.env.dir.path().join("local").join(rel)
    }

    /// Creates a remote file owned by the test user.
    fn put_remote(&self, rel: &str, content: &[u8], mode: u32) -> PathBuf {
        let p = self.r(rel);
        fs::write(&p, content).unwrap();
        chmod(&p, mode);
        give(&p);
        p
    }

    /// `file SUB -H 127.0.0.1 -P port -u TEST_USER [--direct] EXTRA...`.
    fn args(&self, json: bool, via: Via, sub: &str, extra: &[&str]) -> Vec<String> {
        let mut a: Vec<String> = Vec::new();
        if json {
            a.push("--json".into());
        }
        a.extend(["file", sub, "-H", "127.0.0.1", "-P"].map(String::from));
        a.push(self.sshd.port.to_string());
        a.extend(["-u", TEST_USER].map(String::from));
        if via == Via::Direct {
            a.push("--direct".into());
        }
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    }

    /// Runs a JSON file command: (envelope, exit code).
    fn json(&self, via: Via, sub: &str, extra: &[&str]) -> (Value, i32) {
        self.json_within(via, sub, extra, RUN_DEADLINE)
    }

    fn json_within(&self, via: Via, sub: &str, extra: &[&str], deadline: Duration) -> (Value, i32) {
        let args = self.args(true, via, sub, extra);
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = self.env.run_with(&argv, None, deadline);
        parse_json_output(&out, &argv)
    }

    /// A successful JSON file command's data.
    fn ok(&self, via: Via, sub: &str, extra: &[&str]) -> Value {
        let (v, rc) = self.json(via, sub, extra);
        assert_eq!(v["ok"], true, "file {sub} {extra:?} failed (rc {rc}): {v}");
        assert_eq!(rc, 0, "file {sub} {extra:?}: exit {rc}: {v}");
        v["data"].clone()
    }

    /// A failing JSON file command: (code, exit code).
    fn err(&self, via: Via, sub: &str, extra: &[&str]) -> (String, i32) {
        let (v, rc) = self.json(via, sub, extra);
        assert_eq!(
            v["ok"], false,
            "file {sub} {extra:?} should have failed: {v}"
        );
        assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
        (v["code"].as_str().unwrap_or_default().to_string(), rc)
    }

    /// Temp files of ours left in `dir`.
    fn temps_in(&self, dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.contains(".agentssh-") && n.ends_with(".tmp"))
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn sha256_file(p: &Path) -> String {
    let mut f = fs::File::open(p).unwrap_or_else(|e| panic!("open {p:?}: {e}"));
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    format!("{:x}", h.finalize())
}

fn random_file(p: &Path, size: usize) {
    let mut f = fs::File::create(p).unwrap();
    let mut rng = rand::thread_rng();
    let mut buf = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(buf.len());
        rng.fill_bytes(&mut buf[..n]);
        f.write_all(&buf[..n]).unwrap();
        left -= n;
    }
}

fn set_mtime(p: &Path, secs: u64) {
    let f = fs::File::open(p).unwrap();
    let t = UNIX_EPOCH + Duration::from_secs(secs);
    f.set_times(fs::FileTimes::new().set_modified(t).set_accessed(t))
        .unwrap();
}

fn mtime_of(p: &Path) -> i64 {
    fs::symlink_metadata(p).unwrap().mtime()
}

/// A tree snapshot: relative path -> (kind, mode, size, mtime, sha or link target).
type Snapshot = BTreeMap<String, (char, u32, u64, i64, String)>;

fn snapshot(root: &Path) -> Snapshot {
    fn walk(root: &Path, dir: &Path, out: &mut Snapshot) {
        for e in fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let m = fs::symlink_metadata(&p).unwrap();
            let ft = m.file_type();
            if ft.is_symlink() {
                let t = fs::read_link(&p).unwrap().to_string_lossy().into_owned();
                out.insert(rel, ('l', 0, 0, 0, t));
            } else if ft.is_dir() {
                out.insert(rel, ('d', m.mode() & 0o7777, 0, m.mtime(), String::new()));
                walk(root, &p, out);
            } else {
                let sha = sha256_file(&p);
                out.insert(rel, ('f', m.mode() & 0o7777, m.len(), m.mtime(), sha));
            }
        }
    }
    let mut out = Snapshot::new();
    walk(root, root, &mut out);
    out
}

/// A tree with nested and empty dirs, odd names (spaces, a newline), symlinks (one
/// dangling), assorted modes and old mtimes.
fn make_tree(root: &Path) {
    fs::create_dir_all(root.join("a/b/c")).unwrap();
    fs::create_dir_all(root.join("empty")).unwrap();
    fs::create_dir_all(root.join("sp ace/inner dir")).unwrap();
    fs::create_dir_all(root.join("private")).unwrap();
    let files: &[(&str, &[u8], u32)] = &[
        ("a/b/c/deep.txt", b"deep\n", 0o644),
        ("a/top.bin", &[0, 1, 2, 255, 254, b'\n', 0], 0o600),
        ("sp ace/file with space.txt", b"spaces\n", 0o640),
        ("sp ace/inner dir/x", b"", 0o644),
        ("new\nline.txt", b"newline in the name\n", 0o644),
        ("run.sh", b"#!/bin/sh\necho hi\n", 0o750),
        ("readonly.txt", b"ro\n", 0o444),
        ("private/secret", b"s\n", 0o600),
        (" leading space", b"ls\n", 0o644),
    ];
    for (i, (rel, content, mode)) in files.iter().enumerate() {
        let p = root.join(rel);
        fs::write(&p, content).unwrap();
        chmod(&p, *mode);
        set_mtime(&p, 1_600_000_000 + i as u64 * 1000);
    }
    let mut big = vec![0u8; 3 * 1024 * 1024 + 17];
    rand::thread_rng().fill_bytes(&mut big);
    fs::write(root.join("a/b/big.dat"), &big).unwrap();
    set_mtime(&root.join("a/b/big.dat"), 1_650_000_000);
    std::os::unix::fs::symlink("a/b/c/deep.txt", root.join("link to deep")).unwrap();
    std::os::unix::fs::symlink("../nowhere", root.join("a/dangling")).unwrap();
    chmod(&root.join("private"), 0o700);
    // Directory mtimes last, deepest first (creating entries bumps them).
    for (i, d) in [
        "a/b/c",
        "a/b",
        "a",
        "empty",
        "sp ace/inner dir",
        "sp ace",
        "private",
    ]
    .iter()
    .enumerate()
    {
        set_mtime(&root.join(d), 1_500_000_000 + i as u64 * 100);
    }
}

/// The server flavour and the method the JSON must report.
#[derive(Debug, Clone, Copy)]
struct Flavour {
    sftp_server: bool,
    method: &'static str,
}

const SFTP: Flavour = Flavour {
    sftp_server: true,
    method: "sftp",
};
const EXEC: Flavour = Flavour {
    sftp_server: false,
    method: "exec",
};

#[rstest]
#[case::sftp(SFTP)]
#[case::exec_fallback(EXEC)]
fn hundred_megabytes_round_trip_by_sha256(#[case] f: Flavour) {
    let fx = Fx::new(f.sftp_server);
    fs::create_dir_all(fx.l("")).unwrap();
    let src = fx.l("big.bin");
    random_file(&src, 100 * 1000 * 1000);
    chmod(&src, 0o640);
    set_mtime(&src, 1_600_000_123);
    let want = sha256_file(&src);
    let remote = fx.rs("big.bin");

    let (v, rc) = fx.json_within(
        Via::Daemon,
        "upload",
        &["--local", &src.display().to_string(), "--remote", &remote],
        BIG_DEADLINE,
    );
    assert_eq!((v["ok"].clone(), rc), (Value::Bool(true), 0), "{v}");
    let d = &v["data"];
    assert_eq!(d["method"], f.method, "{d}");
    assert_eq!(d["bytes"], 100_000_000u64, "{d}");
    assert_eq!(d["remote"], remote.as_str());
    assert_eq!(sha256_file(Path::new(&remote)), want);
    assert_eq!(mode_of(Path::new(&remote)), 0o640);
    assert_eq!(mtime_of(Path::new(&remote)), 1_600_000_123);
    assert_eq!(
        fs::metadata(&remote).unwrap().uid(),
        test_user_ids().0.as_raw()
    );
    assert!(fx.temps_in(fx.dir.path()).is_empty());

    let back = fx.l("back.bin");
    let (v, rc) = fx.json_within(
        Via::Direct,
        "download",
        &["--remote", &remote, "--local", &back.display().to_string()],
        BIG_DEADLINE,
    );
    assert_eq!((v["ok"].clone(), rc), (Value::Bool(true), 0), "{v}");
    assert_eq!(v["data"]["method"], f.method);
    assert_eq!(sha256_file(&back), want);
    assert_eq!(mode_of(&back), 0o640);
    assert_eq!(mtime_of(&back), 1_600_000_123);
}

#[rstest]
#[case::sftp(SFTP, Via::Daemon)]
#[case::sftp_direct(SFTP, Via::Direct)]
#[case::exec_fallback(EXEC, Via::Daemon)]
fn trees_with_odd_names_and_symlinks_round_trip(#[case] f: Flavour, #[case] via: Via) {
    let fx = Fx::new(f.sftp_server);
    let src = fx.l("tree");
    fs::create_dir_all(&src).unwrap();
    make_tree(&src);
    let before = snapshot(&src);

    // Into an existing directory: the tree lands under its own name.
    let d = fx.ok(
        via,
        "upload",
        &[
            "--local",
            &src.display().to_string(),
            "--remote",
            &fx.rs(""),
            "--recursive",
        ],
    );
    assert_eq!(d["method"], f.method, "{d}");
    assert_eq!(d["type"], "dir");
    assert_eq!(d["remote"], fx.rs("tree"));
    assert_eq!(d["files"], 10, "{d}");
    assert_eq!(d["symlinks"], 2, "{d}");
    assert_eq!(snapshot(&fx.r("tree")), before, "uploaded tree differs");
    assert!(fx.temps_in(&fx.r("tree")).is_empty());

    // Back down, into a new directory name.
    let back = fx.l("back");
    let d = fx.ok(
        via,
        "download",
        &[
            "--remote",
            &fx.rs("tree"),
            "--local",
            &back.display().to_string(),
            "--recursive",
        ],
    );
    assert_eq!(d["method"], f.method);
    assert_eq!(d["local"], back.display().to_string());
    assert_eq!(snapshot(&back), before, "downloaded tree differs");

    // A directory without --recursive is a usage error.
    let (code, rc) = fx.err(
        via,
        "upload",
        &[
            "--local",
            &src.display().to_string(),
            "--remote",
            &fx.rs("x"),
        ],
    );
    assert_eq!((code.as_str(), rc), ("usage", 2));
}

#[rstest]
#[case::sftp(SFTP)]
#[case::exec_fallback(EXEC)]
fn edit_replaces_once_and_a_missing_pattern_changes_nothing(#[case] f: Flavour) {
    let fx = Fx::new(f.sftp_server);
    let cfg = fx.put_remote("app.ini", b"[app]\nport=8080\nhost=x\nport=9\n", 0o640);
    let p = cfg.display().to_string();

    let d = fx.ok(
        Via::Daemon,
        "edit",
        &[
            "--remote",
            &p,
            "--find",
            r"port=\d+",
            "--replace",
            "port=1234",
            "--regex",
        ],
    );
    assert_eq!(d["replacements"], 1, "{d}");
    assert_eq!(d["method"], f.method);
    assert_eq!(
        fs::read(&cfg).unwrap(),
        b"[app]\nport=1234\nhost=x\nport=9\n"
    );
    assert_eq!(mode_of(&cfg), 0o640);

    let d = fx.ok(
        Via::Direct,
        "edit",
        &[
            "--remote",
            &p,
            "--find",
            "port=",
            "--replace",
            "p=",
            "--all",
        ],
    );
    assert_eq!(d["replacements"], 2);
    let after = fs::read(&cfg).unwrap();
    assert_eq!(after, b"[app]\np=1234\nhost=x\np=9\n");

    let ino = fs::metadata(&cfg).unwrap().ino();
    let mtime = mtime_of(&cfg);
    for (via, extra) in [(Via::Daemon, "--regex"), (Via::Direct, "--all")] {
        let (code, rc) = fx.err(
            via,
            "edit",
            &[
                "--remote",
                &p,
                "--find",
                r"nope\d+",
                "--replace",
                "x",
                extra,
            ],
        );
        assert_eq!((code.as_str(), rc), ("not_found", 1));
    }
    assert_eq!(fs::read(&cfg).unwrap(), after, "the file changed");
    assert_eq!(mode_of(&cfg), 0o640);
    assert_eq!(
        fs::metadata(&cfg).unwrap().ino(),
        ino,
        "the file was replaced"
    );
    assert_eq!(mtime_of(&cfg), mtime);
    assert!(fx.temps_in(fx.dir.path()).is_empty());

    let (code, _) = fx.err(
        Via::Daemon,
        "edit",
        &[
            "--remote",
            &fx.rs("missing.ini"),
            "--find",
            "a",
            "--replace",
            "b",
        ],
    );
    assert_eq!(code, "not_found");
}

#[rstest]
#[case::sftp(SFTP)]
#[case::exec_fallback(EXEC)]
fn write_keeps_the_mode_follows_symlinks_and_appends(#[case] f: Flavour) {
    let fx = Fx::new(f.sftp_server);
    let t = fx.put_remote("conf", b"old\n", 0o640);
    let p = t.display().to_string();
    let d = fx.ok(
        Via::Daemon,
        "write",
        &["--remote", &p, "--content", "new\n"],
    );
    assert_eq!(
        (d["bytes"].clone(), d["created"].clone()),
        (4.into(), false.into()),
        "{d}"
    );
    assert_eq!(d["mode"], "0640");
    assert_eq!(d["method"], f.method);
    assert_eq!(fs::read(&t).unwrap(), b"new\n");
    assert_eq!(mode_of(&t), 0o640);

    let d = fx.ok(
        Via::Direct,
        "write",
        &["--remote", &p, "--content", "more\n", "--append"],
    );
    assert_eq!(d["appended"], true);
    assert_eq!(fs::read(&t).unwrap(), b"new\nmore\n");

    // Binary stdin, a new file.
    let bin: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
    let args = fx.args(
        true,
        Via::Daemon,
        "write",
        &["--remote", &fx.rs("fresh.bin"), "--stdin"],
    );
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let (v, rc) = fx.env.json_stdin(&argv, &bin);
    assert_eq!((v["ok"].clone(), rc), (true.into(), 0), "{v}");
    assert_eq!(v["data"]["created"], true);
    assert_eq!(v["data"]["mode"], "0644");
    assert_eq!(fs::read(fx.r("fresh.bin")).unwrap(), bin);

    // Through a symlink: the target changes, the link stays a link.
    std::os::unix::fs::symlink("conf", fx.r("conf.link")).unwrap();
    give(&fx.r("conf.link"));
    fx.ok(
        Via::Daemon,
        "write",
        &["--remote", &fx.rs("conf.link"), "--content", "via link\n"],
    );
    assert!(fs::symlink_metadata(fx.r("conf.link"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(fs::read(&t).unwrap(), b"via link\n");
    assert_eq!(mode_of(&t), 0o640);
    assert!(fx.temps_in(fx.dir.path()).is_empty());
}

/// Starts `file write --stdin` (JSON) with a piped stdin and feeds it `first` bytes.
fn start_write(fx: &Fx, via: Via, target: &str, first: &[u8]) -> (Child, std::process::ChildStdin) {
    let args = fx.args(true, via, "write", &["--remote", target, "--stdin"]);
    let mut cmd = fx.env.cmd();
    cmd.args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(first).unwrap();
    (child, stdin)
}

#[rstest]
#[case::daemon_client_killed(SFTP, Via::Daemon, Signal::SIGKILL)]
#[case::direct_terminated(SFTP, Via::Direct, Signal::SIGTERM)]
#[case::exec_daemon_client_killed(EXEC, Via::Daemon, Signal::SIGKILL)]
#[case::exec_direct_terminated(EXEC, Via::Direct, Signal::SIGTERM)]
fn an_interrupted_write_leaves_the_old_file(
    #[case] f: Flavour,
    #[case] via: Via,
    #[case] sig: Signal,
) {
    let fx = Fx::new(f.sftp_server);
    let t = fx.put_remote("data", b"the old content\n", 0o640);
    let (mut child, stdin) = start_write(&fx, via, &t.display().to_string(), &vec![7u8; 4 << 20]);
    // Mid-transfer: the hidden temp file exists and is filling up.
    assert!(
        wait_until(Duration::from_secs(30), || !fx
            .temps_in(fx.dir.path())
            .is_empty()),
        "no temp file appeared"
    );
    kill(Pid::from_raw(child.id() as i32), sig).unwrap();
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "the write should not succeed: {status:?}"
    );
    drop(stdin);
    assert!(
        wait_until(Duration::from_secs(15), || fx
            .temps_in(fx.dir.path())
            .is_empty()),
        "temp files left: {:?}",
        fx.temps_in(fx.dir.path())
    );
    assert_eq!(fs::read(&t).unwrap(), b"the old content\n");
    assert_eq!(mode_of(&t), 0o640);
}

#[test]
fn a_killed_upload_leaves_the_old_file() {
    let fx = Fx::new(true);
    let t = fx.put_remote("big", b"old\n", 0o644);
    fs::create_dir_all(fx.l("")).unwrap();
    let src = fx.l("big");
    random_file(&src, 200 * 1000 * 1000);
    let args = fx.args(
        true,
        Via::Daemon,
        "upload",
        &[
            "--local",
            &src.display().to_string(),
            "--remote",
            &t.display().to_string(),
        ],
    );
    let mut child = fx
        .env
        .cmd()
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let seen = wait_until(Duration::from_secs(30), || {
        !fx.temps_in(fx.dir.path()).is_empty()
    });
    kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL).unwrap();
    let _ = child.wait();
    assert!(seen, "no temp file appeared");
    assert!(
        wait_until(Duration::from_secs(15), || fx
            .temps_in(fx.dir.path())
            .is_empty()),
        "temp files left"
    );
    // Either the upload finished before the kill (then the target is whole) or not at all.
    let now = fs::read(&t).unwrap();
    assert!(
        now == b"old\n" || sha256_file(&t) == sha256_file(&src),
        "the target holds a partial upload ({} bytes)",
        now.len()
    );
}

#[rstest]
#[case::sftp(SFTP)]
#[case::exec_fallback(EXEC)]
fn delete_refuses_root_home_and_empty_paths(#[case] f: Flavour) {
    let fx = Fx::new(f.sftp_server);
    for bad in ["/", "", "/tmp/..", "~", ".", "~/", "/tmp/../..//", "x/.."] {
        let (code, rc) = fx.err(Via::Daemon, "delete", &["--remote", bad, "--recursive"]);
        assert_eq!(
            (code.as_str(), rc),
            ("usage", 2),
            "delete --recursive {bad:?}"
        );
    }
    assert!(Path::new("/tmp").is_dir());

    fs::create_dir_all(fx.r("t/sub/deeper")).unwrap();
    fs::write(fx.r("t/sub/f"), "x").unwrap();
    std::os::unix::fs::symlink("/", fx.r("t/rootlink")).unwrap();
    for p in ["t", "t/sub", "t/sub/deeper", "t/sub/f", "t/rootlink"] {
        give(&fx.r(p));
    }
    let (code, _) = fx.err(Via::Daemon, "delete", &["--remote", &fx.rs("t")]);
    assert_eq!(code, "usage", "a non-empty dir needs --recursive");
    let d = fx.ok(Via::Direct, "delete", &["--remote", &fx.rs("t/sub/f")]);
    assert_eq!(
        (d["type"].clone(), d["method"].clone()),
        ("file".into(), f.method.into())
    );
    let d = fx.ok(
        Via::Daemon,
        "delete",
        &["--remote", &fx.rs("t"), "--recursive"],
    );
    assert_eq!(d["deleted"], true);
    assert!(!fx.r("t").exists());
    let (code, rc) = fx.err(Via::Daemon, "delete", &["--remote", &fx.rs("t")]);
    assert_eq!((code.as_str(), rc), ("not_found", 1));
}

#[rstest]
#[case::sftp(SFTP, "auto")]
#[case::exec_on_an_sftp_server(SFTP, "exec")]
#[case::exec_fallback(EXEC, "auto")]
fn ls_reports_name_type_size_mode_mtime_and_link_target(#[case] f: Flavour, #[case] method: &str) {
    let fx = Fx::new(f.sftp_server);
    let file = fx.put_remote("a file", b"12345", 0o640);
    set_mtime(&file, 1_600_000_000);
    fs::create_dir(fx.r("sub")).unwrap();
    give(&fx.r("sub"));
    std::os::unix::fs::symlink("a file", fx.r("lnk")).unwrap();
    give(&fx.r("lnk"));
    let d = fx.ok(
        Via::Daemon,
        "ls",
        &["--remote", &fx.rs(""), "--method", method],
    );
    assert_eq!(
        d["method"],
        if method == "exec" { "exec" } else { f.method }
    );
    assert_eq!(d["type"], "dir");
    let entries = d["entries"].as_array().unwrap();
    let names: Vec<&str> = entries
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a file", "lnk", "sub"]);
    let e = &entries[0];
    assert_eq!(e["type"], "file");
    assert_eq!(e["size"], 5);
    assert_eq!(e["mode"], "0640");
    assert_eq!(e["mtime"], 1_600_000_000u64);
    assert!(e["link_target"].is_null());
    assert_eq!(entries[1]["type"], "symlink");
    assert_eq!(entries[1]["link_target"], "a file");
    assert_eq!(entries[2]["type"], "dir");

    // One file: its own entry; a missing path: not_found.
    let d = fx.ok(
        Via::Direct,
        "ls",
        &["--remote", &file.display().to_string()],
    );
    assert_eq!(d["entries"][0]["name"], "a file");
    let (code, _) = fx.err(Via::Daemon, "ls", &["--remote", &fx.rs("missing")]);
    assert_eq!(code, "not_found");
}

#[rstest]
#[case::sftp(SFTP)]
#[case::exec_fallback(EXEC)]
fn read_gives_text_binary_and_raw_bytes(#[case] f: Flavour) {
    let fx = Fx::new(f.sftp_server);
    let bin: Vec<u8> = vec![0, 159, 146, 150, 255, b'\n', 1];
    let b = fx.put_remote("bin", &bin, 0o600);
    let t = fx.put_remote("text", "héllo\nwörld\n".as_bytes(), 0o644);
    let d = fx.ok(Via::Daemon, "read", &["--remote", &b.display().to_string()]);
    let got = base64::engine::general_purpose::STANDARD
        .decode(d["content_b64"].as_str().unwrap())
        .unwrap();
    assert_eq!(got, bin);
    assert_eq!(
        (d["size"].clone(), d["mode"].clone()),
        (7.into(), "0600".into())
    );
    assert!(d["content"].is_null(), "{d}");
    assert_eq!(d["method"], f.method);
    let d = fx.ok(Via::Direct, "read", &["--remote", &t.display().to_string()]);
    assert_eq!(d["content"], "héllo\nwörld\n");
    assert!(d["mtime"].as_u64().unwrap() > 0);

    // Text mode: the bytes exactly, nothing added.
    for via in [Via::Daemon, Via::Direct] {
        let args = fx.args(false, via, "read", &["--remote", &b.display().to_string()]);
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = fx.env.run(&argv);
        assert!(out.status.success(), "{}", show_output(&out));
        assert_eq!(out.stdout, bin);
    }
    let (code, _) = fx.err(Via::Daemon, "read", &["--remote", &fx.rs("missing")]);
    assert_eq!(code, "not_found");
}

#[rstest]
#[case::sftp(SFTP)]
#[case::exec_fallback(EXEC)]
fn missing_and_forbidden_paths_have_their_codes(#[case] f: Flavour) {
    let fx = Fx::new(f.sftp_server);
    let (code, _) = fx.err(
        Via::Daemon,
        "upload",
        &[
            "--local",
            "/nonexistent/agentssh-x",
            "--remote",
            &fx.rs("x"),
        ],
    );
    assert_eq!(code, "not_found");
    let (code, _) = fx.err(
        Via::Daemon,
        "download",
        &[
            "--remote",
            &fx.rs("nope"),
            "--local",
            &fx.l("nope").display().to_string(),
        ],
    );
    assert_eq!(code, "not_found");
    let (code, _) = fx.err(
        Via::Direct,
        "write",
        &["--remote", "/etc/agentssh-forbidden", "--content", "x"],
    );
    assert_eq!(code, "permission_denied");
    assert!(!Path::new("/etc/agentssh-forbidden").exists());
    let (code, _) = fx.err(Via::Daemon, "read", &["--remote", "/etc/shadow"]);
    assert_eq!(code, "permission_denied");
}

#[test]
fn session_id_reuses_the_session_connection() {
    let fx = Fx::new(true);
    let port = fx.sshd.port.to_string();
    let (v, rc) = fx.env.json(&[
        "--json",
        "connect",
        "-H",
        "127.0.0.1",
        "-P",
        &port,
        "-u",
        TEST_USER,
    ]);
    assert_eq!((v["ok"].clone(), rc), (true.into(), 0), "{v}");
    let id = v["data"]["id"].as_str().unwrap().to_string();
    let before = fx.sshd.connection_count();
    let p = fx.rs("via-session");
    let (v, _) = fx.env.json(&[
        "--json",
        "file",
        "write",
        "-s",
        &id,
        "--remote",
        &p,
        "--content",
        "s\n",
    ]);
    assert_eq!(v["ok"], true, "{v}");
    let (v, _) = fx
        .env
        .json(&["--json", "file", "read", "-s", &id, "--remote", &p]);
    assert_eq!(v["data"]["content"], "s\n", "{v}");
    let (v, _) = fx.env.json(&[
        "--json",
        "file",
        "ls",
        "--session-id",
        &id,
        "--remote",
        &fx.rs(""),
    ]);
    assert_eq!(v["data"]["count"], 1, "{v}");
    assert_eq!(
        fx.sshd.connection_count(),
        before,
        "a new connection was opened"
    );

    let (v, rc) = fx
        .env
        .json(&["--json", "file", "ls", "-s", "s999", "--remote", "/tmp"]);
    assert_eq!(
        (v["code"].clone(), rc),
        ("session_not_found".into(), 1),
        "{v}"
    );
    let (v, rc) = fx.env.json(&[
        "--json", "file", "ls", "-s", &id, "--direct", "--remote", "/tmp",
    ]);
    assert_eq!((v["code"].clone(), rc), ("usage".into(), 2), "{v}");
}

#[test]
fn method_scp_is_refused_and_sftp_needs_the_subsystem() {
    let fx = Fx::new(false);
    let (code, rc) = fx.err(Via::Daemon, "ls", &["--remote", "/tmp", "--method", "scp"]);
    assert_eq!((code.as_str(), rc), ("usage", 2));
    let (code, _) = fx.err(Via::Direct, "ls", &["--remote", "/tmp", "--method", "sftp"]);
    assert_eq!(code, "remote_io");
    let d = fx.ok(
        Via::Daemon,
        "ls",
        &["--remote", &fx.rs(""), "--method", "exec"],
    );
    assert_eq!(d["method"], "exec");
}

/// A tiny tmpfs mounted for one test, unmounted on drop.
struct TinyFs(PathBuf);

impl TinyFs {
    fn mount(at: PathBuf, size: &str) -> TinyFs {
        fs::create_dir_all(&at).unwrap();
        let out = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(&at)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "cannot mount a tmpfs (the tests run as root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        give(&at);
        TinyFs(at)
    }
}

impl Drop for TinyFs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[rstest]
#[case::sftp(SFTP)]
#[case::exec_fallback(EXEC)]
fn a_full_disk_is_remote_io_and_leaves_the_old_file(#[case] f: Flavour) {
    let fx = Fx::new(f.sftp_server);
    let tiny = TinyFs::mount(fx.r("full"), "1m");
    let target = tiny.0.join("target");
    fs::write(&target, b"old\n").unwrap();
    give(&target);
    fs::create_dir_all(fx.l("")).unwrap();
    let src = fx.l("3mb");
    random_file(&src, 3 * 1024 * 1024);
    let t = target.display().to_string();
    let (code, rc) = fx.err(
        Via::Daemon,
        "upload",
        &["--local", &src.display().to_string(), "--remote", &t],
    );
    assert_eq!((code.as_str(), rc), ("remote_io", 1));
    let args = fx.args(true, Via::Direct, "write", &["--remote", &t, "--stdin"]);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let (v, _) = fx.env.json_stdin(&argv, &vec![1u8; 3 * 1024 * 1024]);
    assert_eq!(v["code"], "remote_io", "{v}");
    assert_eq!(fs::read(&target).unwrap(), b"old\n");
    assert!(
        fx.temps_in(&tiny.0).is_empty(),
        "{:?}",
        fx.temps_in(&tiny.0)
    );
}

/// `(code, error sentence)` of a failing JSON file command.
fn failure(fx: &Fx, via: Via, sub: &str, extra: &[&str]) -> (String, String) {
    let (v, _) = fx.json(via, sub, extra);
    assert_eq!(
        v["ok"], false,
        "file {sub} {extra:?} should have failed: {v}"
    );
    (
        v["code"].as_str().unwrap_or_default().to_string(),
        v["error"].as_str().unwrap_or_default().to_string(),
    )
}

/// `path` is a directory owned by the test user (created over SSH, not by us).
fn assert_remote_dir(path: &Path) {
    let m = fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    assert!(m.is_dir(), "{path:?} is not a directory");
    assert_eq!(m.uid(), test_user_ids().0.as_raw(), "{path:?} owner");
}

#[rstest]
#[case::sftp(SFTP)]
#[case::exec_fallback(EXEC)]
fn parents_creates_missing_directories_and_without_it_the_error_names_them(#[case] f: Flavour) {
    let fx = Fx::new(f.sftp_server);
    let missing = fx.rs("w/x");
    let target = fx.rs("w/x/conf.ini");
    for (via, extra) in [(Via::Daemon, None), (Via::Direct, Some("--append"))] {
        let mut args = vec!["--remote", target.as_str(), "--content", "x"];
        args.extend(extra);
        let (code, error) = failure(&fx, via, "write", &args);
        assert_eq!(code, "not_found", "{error}");
        assert!(
            error.contains(&format!("remote directory {missing} does not exist"))
                && error.contains("--parents")
                && !error.contains("temp file"),
            "{error}"
        );
    }
    assert!(!fx.r("w").exists());
    let d = fx.ok(
        Via::Daemon,
        "write",
        &["--remote", &target, "--content", "port=1\n", "--parents"],
    );
    assert_eq!(
        (d["created"].clone(), d["method"].clone()),
        (true.into(), f.method.into()),
        "{d}"
    );
    assert_eq!(fs::read(fx.r("w/x/conf.ini")).unwrap(), b"port=1\n");
    assert_remote_dir(&fx.r("w/x"));
    let d = fx.ok(
        Via::Direct,
        "write",
        &[
            "--remote",
            &fx.rs("w/y/log"),
            "--content",
            "a\n",
            "--append",
            "--parents",
        ],
    );
    assert_eq!(d["appended"], true, "{d}");
    assert_eq!(fs::read(fx.r("w/y/log")).unwrap(), b"a\n");

    // Upload of a file into a directory that is not there yet, and of a tree below one.
    fs::create_dir_all(fx.l("site/sub")).unwrap();
    fs::write(fx.l("app.tar"), b"tar").unwrap();
    fs::write(fx.l("site/sub/index.html"), b"<p>").unwrap();
    let app = fx.l("app.tar").display().to_string();
    let into = format!("{}/", fx.rs("u/v"));
    let (code, error) = failure(
        &fx,
        Via::Daemon,
        "upload",
        &["--local", &app, "--remote", &into],
    );
    assert_eq!(code, "not_found", "{error}");
    assert!(
        error.contains(&format!("remote directory {} does not exist", fx.rs("u/v"))),
        "{error}"
    );
    let site = fx.l("site").display().to_string();
    let tree_dest = fx.rs("t/deep/site");
    let (code, error) = failure(
        &fx,
        Via::Direct,
        "upload",
        &["--local", &site, "--remote", &tree_dest, "--recursive"],
    );
    assert_eq!(code, "not_found", "{error}");
    assert!(
        error.contains(&format!(
            "remote directory {} does not exist",
            fx.rs("t/deep")
        )),
        "{error}"
    );
    assert!(!fx.r("u").exists() && !fx.r("t").exists());
    fx.ok(
        Via::Daemon,
        "upload",
        &["--local", &app, "--remote", &into, "--parents"],
    );
    assert_eq!(fs::read(fx.r("u/v/app.tar")).unwrap(), b"tar");
    fx.ok(
        Via::Direct,
        "upload",
        &[
            "--local",
            &site,
            "--remote",
            &tree_dest,
            "--recursive",
            "--parents",
        ],
    );
    assert_eq!(
        fs::read(fx.r("t/deep/site/sub/index.html")).unwrap(),
        b"<p>"
    );
    assert_remote_dir(&fx.r("t/deep"));
    assert!(fx.temps_in(&fx.r("u/v")).is_empty());
}

#[rstest]
#[case::sftp(SFTP)]
#[case::exec_fallback(EXEC)]
fn mkdir_creates_and_says_whether_it_did(#[case] f: Flavour) {
    let fx = Fx::new(f.sftp_server);
    let deep = fx.rs("m/n/o");
    let (code, error) = failure(&fx, Via::Daemon, "mkdir", &["--remote", &deep]);
    assert_eq!(code, "not_found", "{error}");
    assert!(
        error.contains(&format!("remote directory {} does not exist", fx.rs("m/n"))),
        "{error}"
    );
    let d = fx.ok(Via::Daemon, "mkdir", &["--remote", &deep, "--parents"]);
    assert_eq!(
        (d["path"].clone(), d["created"].clone()),
        (deep.clone().into(), true.into()),
        "{d}"
    );
    assert_eq!(d["method"], f.method);
    assert_remote_dir(&fx.r("m/n/o"));
    let d = fx.ok(Via::Direct, "mkdir", &["--remote", &deep, "--parents"]);
    assert_eq!(d["created"], false, "{d}");
    let (code, error) = failure(&fx, Via::Daemon, "mkdir", &["--remote", &deep]);
    assert_eq!(code, "remote_io", "{error}");
    assert!(error.contains("already exists"), "{error}");
    let d = fx.ok(Via::Direct, "mkdir", &["--remote", &fx.rs("m/n/p")]);
    assert_eq!(d["created"], true, "{d}");
    assert_remote_dir(&fx.r("m/n/p"));
    fx.put_remote("plain", b"f", 0o644);
    for extra in [None, Some("--parents")] {
        let mut args = vec!["--remote".to_string(), fx.rs("plain")];
        args.extend(extra.map(String::from));
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, error) = failure(&fx, Via::Daemon, "mkdir", &argv);
        assert_eq!(code, "remote_io", "{extra:?}: {error}");
    }
    let out = fx.env.run(&["file", "mkdir", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("--parents") && help.contains("Remote directory to create"),
        "{help}"
    );
}
