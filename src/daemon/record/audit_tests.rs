//! Tests of the hash-chained activity log: continuation across reopen and rotation, and
//! `verify` naming the file and line of an edited, removed or reordered entry.

use super::*;

fn entry(n: u64) -> Item {
    Item {
        entry: ActivityEntry {
            time_ms: n,
            client: "cli:1".into(),
            target: Some("s1".into()),
            command: format!("session send {n}"),
            duration_ms: 1,
            outcome: "ok".into(),
        },
        recording: None,
    }
}

fn write(dir: &Path, range: std::ops::Range<u64>) {
    let mut c = Chain::open(dir).unwrap();
    for n in range {
        c.append(&entry(n)).unwrap();
    }
}

#[test]
fn the_chain_continues_across_reopen_and_rotation() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), 0..5);
    write(dir.path(), 5..8);
    let v = verify(dir.path()).unwrap();
    assert!(v.ok, "{v:?}");
    assert_eq!(v.entries, 8);
    // Rotation: a tiny file size rotates on every entry; five rotated files are kept.
    let mut c = Chain::open(dir.path()).unwrap();
    c.rotate_at = 1;
    for n in 8..20 {
        c.append(&entry(n)).unwrap();
    }
    assert!(dir.path().join("activity.jsonl.5").exists());
    assert!(!dir.path().join("activity.jsonl.6").exists());
    let v = verify(dir.path()).unwrap();
    assert!(v.ok, "{v:?}");
    assert_eq!(
        v.entries, 6,
        "five rotated files of one entry and the live one"
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(dir.path().join(FILE))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(recent(dir.path(), 10).last().unwrap().time_ms, 19);
}

#[test]
fn verify_names_an_edited_or_removed_entry() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), 0..4);
    let path = dir.path().join(FILE);
    let good = std::fs::read_to_string(&path).unwrap();
    // One byte of the third entry's command.
    let edited = good.replacen("session send 2", "session send 3", 1);
    std::fs::write(&path, &edited).unwrap();
    let v = verify(dir.path()).unwrap();
    let b = v.broken_at.unwrap();
    assert!(!v.ok);
    assert_eq!((b.file, b.line, b.seq), (path.clone(), 3, Some(3)));
    assert!(b.reason.contains("edited"), "{}", b.reason);
    // The second line removed: the (old) third no longer links.
    let lines: Vec<&str> = good.lines().collect();
    let removed = format!("{}\n{}\n{}\n", lines[0], lines[2], lines[3]);
    std::fs::write(&path, removed).unwrap();
    let b = verify(dir.path()).unwrap().broken_at.unwrap();
    assert_eq!(b.line, 2);
    assert!(b.reason.contains("prev_hash"), "{}", b.reason);
}

#[test]
fn a_cut_last_line_is_repaired_and_a_changed_recording_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("r.cast");
    std::fs::write(&rec, b"cast bytes\n").unwrap();
    let mut c = Chain::open(dir.path()).unwrap();
    let mut item = entry(1);
    item.recording = Some(RecordingHash {
        path: rec.clone(),
        bytes: 11,
        sha256: crate::hex(&Sha256::digest(b"cast bytes\n")),
    });
    c.append(&item).unwrap();
    drop(c);
    let path = dir.path().join(FILE);
    let mut text = std::fs::read(&path).unwrap();
    text.extend_from_slice(b"{\"seq\":2,\"tru");
    std::fs::write(&path, &text).unwrap();
    write(dir.path(), 2..3);
    let v = verify(dir.path()).unwrap();
    assert!(v.ok, "{v:?}");
    assert_eq!((v.entries, v.recordings_checked), (2, 1));
    std::fs::write(&rec, b"cast bytez\n").unwrap();
    let b = verify(dir.path()).unwrap().broken_at.unwrap();
    assert_eq!(b.file, rec);
    assert!(b.reason.contains("line 1"), "{}", b.reason);
}
