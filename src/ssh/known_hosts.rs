//! Host-key verification against OpenSSH-format known_hosts files, done by us rather than
//! russh: lookup ([`check_host_key`]) with the semantics of OpenSSH's known_hosts(5) (patterns,
//! negation, hashed names, `@revoked`, `@cert-authority`), recording a newly accepted key
//! ([`learn_host_key`]) and fingerprints as OpenSSH prints them ([`fingerprint`]).
//!
//! Also owns the OpenSSH wildcard matcher ([`match_pattern`], [`match_pattern_list`]) that
//! `ssh_config` shares.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use russh::keys::ssh_key::public::KeyData;
use russh::keys::{Certificate, HashAlg, PublicKey, PublicKeyOrCertificate};

/// Result of looking a server key up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyStatus {
    /// A matching line names this key for this host.
    Known,
    /// No line names this host with a key of this algorithm (or none at all).
    Unknown,
    /// Lines name this host with a different key of the same algorithm.
    Changed {
        /// Every applicable line that records a different key of the server key's algorithm.
        recorded: Vec<RecordedKey>,
    },
    /// The key is marked @revoked.
    Revoked {
        /// The file holding the `@revoked` line.
        file: PathBuf,
        /// Its line number, counted from 1.
        line: usize,
    },
}

/// A key recorded for the host in a known_hosts file, as reported for a changed key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedKey {
    /// The file holding the line.
    pub file: PathBuf,
    /// Line number, counted from 1.
    pub line: usize,
    /// Key algorithm as OpenSSH names it, e.g. `ssh-ed25519`.
    pub algorithm: String,
    /// `SHA256:...` as OpenSSH prints it.
    pub fingerprint: String,
}

/// OpenSSH-style SHA256 fingerprint "SHA256:base64-without-padding".
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// How a pattern list relates to a name (OpenSSH's `match_pattern_list`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListMatch {
    /// No pattern matched.
    NoMatch,
    /// A positive pattern matched and no negated one did.
    Match,
    /// A `!pattern` matched: the list must not apply, whatever else matched.
    Negated,
}

/// Matches `name` against one OpenSSH wildcard pattern (`*` any run, `?` one character),
/// ASCII case-insensitively.
pub fn match_pattern(name: &str, pattern: &str) -> bool {
    wildcard_match(name, pattern, true)
}

/// Matches `name` against a `*`/`?` wildcard pattern, ASCII case-insensitively if
/// `ignore_case` (file names in `Include` globs are matched case-sensitively).
pub(crate) fn wildcard_match(name: &str, pattern: &str, ignore_case: bool) -> bool {
    let fold = |c: char| {
        if ignore_case {
            c.to_ascii_lowercase()
        } else {
            c
        }
    };
    let n: Vec<char> = name.chars().map(fold).collect();
    let p: Vec<char> = pattern.chars().map(fold).collect();
    let (mut ni, mut pi) = (0, 0);
    // Position of the last `*` in the pattern and the name index it was tried at.
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || (p[pi] != '*' && p[pi] == n[ni])) {
            ni += 1;
            pi += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Matches `name` against a comma-separated list of patterns, each optionally negated with
/// `!`. A negated match wins over any positive one.
pub fn match_pattern_list(name: &str, list: &str) -> ListMatch {
    let mut result = ListMatch::NoMatch;
    for pat in list.split(',') {
        let (negated, pat) = match pat.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, pat),
        };
        if match_pattern(name, pat) {
            if negated {
                return ListMatch::Negated;
            }
            result = ListMatch::Match;
        }
    }
    result
}

/// The marker at the start of a known_hosts line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    None,
    CertAuthority,
    Revoked,
}

/// One well-formed known_hosts line.
struct Entry<'a> {
    marker: Marker,
    hosts: &'a str,
    key: PublicKey,
}

/// Parses one line; `None` for blank lines, comments and anything malformed.
fn parse_line(line: &str) -> Option<Entry<'_>> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let mut fields = line.split_ascii_whitespace();
    let mut first = fields.next()?;
    let marker = match first {
        "@cert-authority" => Marker::CertAuthority,
        "@revoked" => Marker::Revoked,
        m if m.starts_with('@') => return None,
        _ => Marker::None,
    };
    if marker != Marker::None {
        first = fields.next()?;
    }
    let (algorithm, data) = (fields.next()?, fields.next()?);
    let key = PublicKey::from_openssh(&format!("{algorithm} {data}")).ok()?;
    Some(Entry {
        marker,
        hosts: first,
        key,
    })
}

/// The names a host is looked up under: `host` for port 22 (and `[host]:22`), else
/// `[host]:port`. Lowercased, as OpenSSH does.
fn lookup_names(host: &str, port: u16) -> Vec<String> {
    let host = host.to_ascii_lowercase();
    if port == 22 {
        vec![format!("[{host}]:22"), host]
    } else {
        vec![format!("[{host}]:{port}")]
    }
}

/// Whether a `|1|salt|hash` field is HMAC-SHA1(salt, name) for `name`.
fn hashed_matches(field: &str, name: &str) -> bool {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut parts = field.split('|');
    let (Some(""), Some("1"), Some(salt), Some(hash), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    let (Ok(salt), Ok(hash)) = (b64.decode(salt), b64.decode(hash)) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(&salt) else {
        return false;
    };
    mac.update(name.as_bytes());
    mac.verify_slice(&hash).is_ok()
}

/// Whether a line's host field applies to any of `names` (and none is negated).
fn hosts_match(field: &str, names: &[String]) -> bool {
    if field.starts_with('|') {
        return names.iter().any(|n| hashed_matches(field, n));
    }
    let results: Vec<ListMatch> = names.iter().map(|n| match_pattern_list(n, field)).collect();
    !results.contains(&ListMatch::Negated) && results.contains(&ListMatch::Match)
}

/// Whether `cert` is a currently valid host certificate for `host` signed by `ca`.
fn cert_valid_for(cert: &Certificate, ca: &PublicKey, host: &str) -> bool {
    let Ok(now) = SystemTime::now().duration_since(UNIX_EPOCH) else {
        return false;
    };
    let ca_fp = ca.fingerprint(HashAlg::Sha256);
    // validate_at checks the CA signature, that the signer is `ca` and the validity window.
    cert.cert_type().is_host()
        && cert.validate_at(now.as_secs(), [&ca_fp]).is_ok()
        && cert.critical_options().is_empty()
        && (cert.valid_principals().is_empty()
            || cert
                .valid_principals()
                .iter()
                .any(|p| p.eq_ignore_ascii_case(host)))
}

/// Looks the server's key up in `files` (searched in order) for `host` (as the user typed or
/// resolved it, e.g. "127.0.0.1" or "example.com") on `port`.
///
/// Follows OpenSSH: a matching `@revoked` line wins over everything; else an exact match in
/// any file is [`HostKeyStatus::Known`]; else applicable lines with a different key of the
/// same algorithm make it [`HostKeyStatus::Changed`]; else [`HostKeyStatus::Unknown`].
/// `@cert-authority` keys never count as the host's own key. A certificate is Known only
/// when a matching `@cert-authority` line names its (verified) signer and it is a valid host
/// certificate for `host`; otherwise it is Unknown. `@revoked` lines, like every other line,
/// apply only when their host patterns match. Missing or unreadable files and malformed
/// lines are skipped.
pub fn check_host_key(
    files: &[PathBuf],
    host: &str,
    port: u16,
    key: &PublicKeyOrCertificate,
) -> HostKeyStatus {
    let names = lookup_names(host, port);
    // Keys whose revocation concerns us: the key itself, or a certificate's key and its CA.
    let (plain, revocable): (Option<&KeyData>, Vec<&KeyData>) = match key {
        PublicKeyOrCertificate::PublicKey { key, .. } => {
            (Some(key.key_data()), vec![key.key_data()])
        }
        PublicKeyOrCertificate::Certificate(cert) => {
            (None, vec![cert.public_key(), cert.signature_key()])
        }
    };
    let mut revoked: Option<(PathBuf, usize)> = None;
    let mut known = false;
    let mut changed = Vec::new();
    for file in files {
        let Ok(bytes) = std::fs::read(file) else {
            continue;
        };
        let text = String::from_utf8_lossy(&bytes);
        for (idx, line) in text.lines().enumerate() {
            let Some(entry) = parse_line(line) else {
                continue;
            };
            if !hosts_match(entry.hosts, &names) {
                continue;
            }
            let data = entry.key.key_data();
            match (entry.marker, key) {
                (Marker::Revoked, _) => {
                    if revoked.is_none() && revocable.contains(&data) {
                        revoked = Some((file.clone(), idx + 1));
                    }
                }
                (Marker::CertAuthority, PublicKeyOrCertificate::Certificate(cert)) => {
                    if data == cert.signature_key() && cert_valid_for(cert, &entry.key, host) {
                        known = true;
                    }
                }
                (Marker::CertAuthority, PublicKeyOrCertificate::PublicKey { .. }) => {}
                (Marker::None, _) => match plain {
                    Some(server) if server == data => known = true,
                    Some(server) if server.algorithm() == data.algorithm() => {
                        changed.push(RecordedKey {
                            file: file.clone(),
                            line: idx + 1,
                            algorithm: data.algorithm().as_str().to_string(),
                            fingerprint: fingerprint(&entry.key),
                        });
                    }
                    _ => {}
                },
            }
        }
    }
    if let Some((file, line)) = revoked {
        HostKeyStatus::Revoked { file, line }
    } else if known {
        HostKeyStatus::Known
    } else if !changed.is_empty() {
        HostKeyStatus::Changed { recorded: changed }
    } else {
        HostKeyStatus::Unknown
    }
}

/// Refuses host names that would corrupt the file or be read back as a pattern or marker.
fn check_learnable_host(host: &str) -> std::io::Result<()> {
    let bad = host.is_empty()
        || host.starts_with(['@', '|', '#'])
        || host
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, ',' | '*' | '?' | '!'));
    if bad {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("cannot record a host key for host name {host:?}"),
        ));
    }
    Ok(())
}

/// Append a line for (host, port, key) to `path` atomically (read existing, write temp file
/// in same dir with mode 0600, fsync, rename; create parent dir 0700 if missing). Host
/// written as `host` for port 22, `[host]:port` otherwise, not hashed.
///
/// Does nothing if `path` already records exactly this key for this host. A symlinked `path`
/// is resolved and its target rewritten; a `path` that exists but is not a regular file
/// (e.g. `/dev/null`) is refused with an error. Concurrent learners may lose an update: the
/// last rename wins.
pub fn learn_host_key(path: &Path, host: &str, port: u16, key: &PublicKey) -> std::io::Result<()> {
    check_learnable_host(host)?;
    let as_presented = PublicKeyOrCertificate::PublicKey {
        key: key.clone(),
        hash_alg: None,
    };
    if check_host_key(&[path.to_path_buf()], host, port, &as_presented) == HostKeyStatus::Known {
        return Ok(());
    }
    let target = match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => std::fs::canonicalize(path)?,
        _ => path.to_path_buf(),
    };
    let mut data = match std::fs::metadata(&target) {
        Ok(meta) if !meta.is_file() => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{} is not a regular file", target.display()),
            ));
        }
        Ok(_) => std::fs::read(&target)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    if !data.is_empty() && !data.ends_with(b"\n") {
        data.push(b'\n');
    }
    let host = host.to_ascii_lowercase();
    let name = if port == 22 {
        host
    } else {
        format!("[{host}]:{port}")
    };
    let encoded = PublicKey::new(key.key_data().clone(), "")
        .to_openssh()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    data.extend_from_slice(format!("{name} {}\n", encoded.trim_end()).as_bytes());
    if let Some(parent) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !parent.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)?;
        }
    }
    crate::fsutil::atomic_write(&target, &data, 0o600)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;
    use std::os::unix::fs::PermissionsExt;

    // Fixtures made with OpenSSH 9.2's ssh-keygen (ed25519 A, B, CA; ecdsa C).
    const KEY_A: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBldfvM4zQch/xNOIdxEYOJKQh55Xl25RVhY+iDDoo/Y";
    const FP_A: &str = "SHA256:n4bxoEq+bABXldAvR/t2D6zFEfavzOvKOCTHc0a1EZg";
    const KEY_B: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHm1XYmekabUfGiZbi/r1YLF/tEs85Ek8MrdwIU20fNE";
    const KEY_C: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBBOuTgXCN5IZ6SOFUacm1CJYTUjnVO7LFCmTNYzjCFCuekaggQp6/heQmY0QZR1PCxzuZkIuB9NJuW0v85AtnAQ=";
    const FP_C: &str = "SHA256:nnZmxIjGKA+DLmFSrBOtPdkvQcSZV8FIJEn7XdGEdpE";
    const KEY_CA: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAID5et8BPg8tQTBrxUqD60y7MsXDYr063OOK0DTR9rptz";
    // `ssh-keygen -H` of "example.com KEY_A" and "[example.com]:2222 KEY_A".
    const HASHED_22: &str = "|1|hHm1wNNf5HXMXiDa6Yc1mpX5hlc=|/sa2jjtzTuxxUOXwxlgf7sJ4QYk=";
    const HASHED_2222: &str = "|1|i52X3nH2/nZluDmOHWpgn1YxcK8=|5ZTKg//4xY3SsvaTrssnRFe4KiE=";
    // Certificates for key A (`ssh-keygen -s ca -I <id> [-h] [-n principals] -V ...`).
    const CERT_HOST: &str = "ssh-ed25519-cert-v01@openssh.com AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29tAAAAIDROfBF7CxVodB9Y8IqT4luDRAsATvSB2cIhJDTwtkWUAAAAIBldfvM4zQch/xNOIdxEYOJKQh55Xl25RVhY+iDDoo/YAAAAAAAAAAAAAAACAAAACGhvc3RjZXJ0AAAADwAAAAtleGFtcGxlLmNvbQAAAAAAAAAA//////////8AAAAAAAAAAAAAAAAAAAAzAAAAC3NzaC1lZDI1NTE5AAAAID5et8BPg8tQTBrxUqD60y7MsXDYr063OOK0DTR9rptzAAAAUwAAAAtzc2gtZWQyNTUxOQAAAEAx5qbnDM9wQHR5N84yUDe16NTfaTQeorFSzIb53/LLrVX88mry7iAzhJ94W2WpAWyE9kpZQW1BA4EkCOjeCHUE";
    const CERT_USER: &str = "ssh-ed25519-cert-v01@openssh.com AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29tAAAAIBv6iYOx++W/dGLP5g/2hStWJPC5QdKJ/p8gjcqYoilTAAAAIBldfvM4zQch/xNOIdxEYOJKQh55Xl25RVhY+iDDoo/YAAAAAAAAAAAAAAABAAAACHVzZXJjZXJ0AAAADwAAAAtleGFtcGxlLmNvbQAAAAAAAAAA//////////8AAAAAAAAAggAAABVwZXJtaXQtWDExLWZvcndhcmRpbmcAAAAAAAAAF3Blcm1pdC1hZ2VudC1mb3J3YXJkaW5nAAAAAAAAABZwZXJtaXQtcG9ydC1mb3J3YXJkaW5nAAAAAAAAAApwZXJtaXQtcHR5AAAAAAAAAA5wZXJtaXQtdXNlci1yYwAAAAAAAAAAAAAAMwAAAAtzc2gtZWQyNTUxOQAAACA+XrfAT4PLUEwa8VKg+tMuzLFw2K9OtzjitA00fa6bcwAAAFMAAAALc3NoLWVkMjU1MTkAAABAGqm5a677VEfqjYrx3rTTADahqCh3tUhCpnK/jBekWZ65+O+hqXfJaHgN/qmMFegWI9mdKI0QuGKXqVSN6o0BBQ==";
    const CERT_EXPIRED: &str = "ssh-ed25519-cert-v01@openssh.com AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29tAAAAIDJVM3ctfV0X1FxtNnKflj9xiPdR7SYsduiHpwzrt++NAAAAIBldfvM4zQch/xNOIdxEYOJKQh55Xl25RVhY+iDDoo/YAAAAAAAAAAAAAAACAAAAB2V4cGlyZWQAAAAPAAAAC2V4YW1wbGUuY29tAAAAADhtQ4AAAAAAOG6VAAAAAAAAAAAAAAAAAAAAADMAAAALc3NoLWVkMjU1MTkAAAAgPl63wE+Dy1BMGvFSoPrTLsyxcNivTrc44rQNNH2um3MAAABTAAAAC3NzaC1lZDI1NTE5AAAAQOFEtUNA7MlkJhAtcZI/1bOdjc4qsKbHfurIjuwiTpMfVHIPJzwvyaWPL+zUkqbjAXzamRAtUXGeHi4tm+UCOQM=";
    const CERT_OTHER_PRINCIPAL: &str = "ssh-ed25519-cert-v01@openssh.com AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29tAAAAINW7D/qprzkvWWFYCSoh+/W6j4MoirVL1LMyYVfsAjCMAAAAIBldfvM4zQch/xNOIdxEYOJKQh55Xl25RVhY+iDDoo/YAAAAAAAAAAAAAAACAAAABW90aGVyAAAAEQAAAA1vdGhlci5leGFtcGxlAAAAAAAAAAD//////////wAAAAAAAAAAAAAAAAAAADMAAAALc3NoLWVkMjU1MTkAAAAgPl63wE+Dy1BMGvFSoPrTLsyxcNivTrc44rQNNH2um3MAAABTAAAAC3NzaC1lZDI1NTE5AAAAQNO/1eQfmTLH6zemFolIXhRvO47r9sbHyWXbSCxXEUzXFQ7Erbo3GdGcmp+5zK64DT0RkSW0vkZ5qKAUjPij3w0=";
    const CERT_SIGNED_BY_B: &str = "ssh-ed25519-cert-v01@openssh.com AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29tAAAAIBLkySSg57o+6DNvAWEj/JYRZJCkrb8k3FIofYYpS9ldAAAAIBldfvM4zQch/xNOIdxEYOJKQh55Xl25RVhY+iDDoo/YAAAAAAAAAAAAAAACAAAAB3dyb25nY2EAAAAPAAAAC2V4YW1wbGUuY29tAAAAAAAAAAD//////////wAAAAAAAAAAAAAAAAAAADMAAAALc3NoLWVkMjU1MTkAAAAgebVdiZ6RptR8aJluL+vVgsX+0SzzkSTwyt3AhTbR80QAAABTAAAAC3NzaC1lZDI1NTE5AAAAQKViCEY1xm/ETYrbD9dHgBxwqSlsC8Q/aAHSwsekjoVMPePgMNXB2ve4j2VrVYGcAh3uQWvyHvLbmwO2X5wNmAw=";
    const CERT_NO_PRINCIPALS: &str = "ssh-ed25519-cert-v01@openssh.com AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29tAAAAIJZNL6QS54dCNUOeIgbHkijZGYorZ8jjgLngT85sYhleAAAAIBldfvM4zQch/xNOIdxEYOJKQh55Xl25RVhY+iDDoo/YAAAAAAAAAAAAAAACAAAAB25vcHJpbmMAAAAAAAAAAAAAAAD//////////wAAAAAAAAAAAAAAAAAAADMAAAALc3NoLWVkMjU1MTkAAAAgPl63wE+Dy1BMGvFSoPrTLsyxcNivTrc44rQNNH2um3MAAABTAAAAC3NzaC1lZDI1NTE5AAAAQHOqK5Cwyu4iaIAQanJTTbXQaQtftnQdSArXiJUUEDylkFwMlPZSsWVViawipZMNR/Ndbe5iwvQpjPfXkZ6hfwM=";

    fn key(s: &str) -> PublicKey {
        PublicKey::from_openssh(s).unwrap()
    }

    fn plain(s: &str) -> PublicKeyOrCertificate {
        PublicKeyOrCertificate::from(key(s))
    }

    fn cert(s: &str) -> PublicKeyOrCertificate {
        PublicKeyOrCertificate::Certificate(Certificate::from_openssh(s).unwrap())
    }

    /// Writes `text` to a known_hosts file in a fresh temp dir.
    fn kh(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    fn check(text: &str, host: &str, port: u16, k: &PublicKeyOrCertificate) -> HostKeyStatus {
        let (_dir, path) = kh(text);
        check_host_key(&[path], host, port, k)
    }

    fn hash_name(salt: &[u8], name: &str) -> String {
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(salt).unwrap();
        mac.update(name.as_bytes());
        let hash = mac.finalize().into_bytes();
        format!("|1|{}|{}", b64.encode(salt), b64.encode(hash))
    }

    #[test]
    fn patterns() {
        assert!(match_pattern("www.example.com", "*.example.com"));
        assert!(match_pattern("WWW.Example.com", "*.EXAMPLE.com"));
        assert!(!match_pattern("example.com", "*.example.com"));
        assert!(match_pattern("10.0.0.5", "10.0.0.?"));
        assert!(!match_pattern("10.0.0.55", "10.0.0.?"));
        assert!(match_pattern("abcabd", "*ab?"));
        assert!(match_pattern("", "*"));
        assert!(!match_pattern("a", ""));
        assert_eq!(match_pattern_list("a.b", "x,*.b"), ListMatch::Match);
        assert_eq!(match_pattern_list("a.b", "*.b,!a.*"), ListMatch::Negated);
        assert_eq!(match_pattern_list("a.c", "*.b"), ListMatch::NoMatch);
    }

    #[test]
    fn fingerprint_matches_ssh_keygen() {
        assert_eq!(fingerprint(&key(KEY_A)), FP_A);
        assert_eq!(fingerprint(&key(KEY_C)), FP_C);
    }

    #[test]
    fn plain_match() {
        let text = format!("# comment\n\nexample.com,10.0.0.1 {KEY_A} a@test\n");
        assert_eq!(
            check(&text, "example.com", 22, &plain(KEY_A)),
            HostKeyStatus::Known
        );
        assert_eq!(
            check(&text, "EXAMPLE.com", 22, &plain(KEY_A)),
            HostKeyStatus::Known
        );
        assert_eq!(
            check(&text, "10.0.0.1", 22, &plain(KEY_A)),
            HostKeyStatus::Known
        );
        assert_eq!(
            check(&text, "other.com", 22, &plain(KEY_A)),
            HostKeyStatus::Unknown
        );
        // A plain entry is for port 22 only.
        assert_eq!(
            check(&text, "example.com", 2222, &plain(KEY_A)),
            HostKeyStatus::Unknown
        );
        assert_eq!(
            check_host_key(&[], "example.com", 22, &plain(KEY_A)),
            HostKeyStatus::Unknown
        );
    }

    #[test]
    fn bracketed_port() {
        let text = format!("[example.com]:2222 {KEY_A}\n[other.com]:22 {KEY_A}\n");
        assert_eq!(
            check(&text, "example.com", 2222, &plain(KEY_A)),
            HostKeyStatus::Known
        );
        assert_eq!(
            check(&text, "example.com", 22, &plain(KEY_A)),
            HostKeyStatus::Unknown
        );
        assert_eq!(
            check(&text, "example.com", 2223, &plain(KEY_A)),
            HostKeyStatus::Unknown
        );
        assert_eq!(
            check(&text, "other.com", 22, &plain(KEY_A)),
            HostKeyStatus::Known
        );
        let text = format!("[10.*]:* {KEY_A}\n");
        assert_eq!(
            check(&text, "10.1.2.3", 8022, &plain(KEY_A)),
            HostKeyStatus::Known
        );
    }

    #[test]
    fn hashed_entries() {
        // Built here with HMAC-SHA1, as OpenSSH does.
        let text = format!(
            "{} {KEY_A}\n{} {KEY_B}\n",
            hash_name(b"0123456789abcdefghij", "example.com"),
            hash_name(b"saltsaltsaltsaltsalt", "[example.com]:2200"),
        );
        assert_eq!(
            check(&text, "example.com", 22, &plain(KEY_A)),
            HostKeyStatus::Known
        );
        assert_eq!(
            check(&text, "example.com", 2200, &plain(KEY_B)),
            HostKeyStatus::Known
        );
        assert_eq!(
            check(&text, "example.org", 22, &plain(KEY_A)),
            HostKeyStatus::Unknown
        );
        // Fixed vector from `ssh-keygen -H`.
        let text = format!("{HASHED_22} {KEY_A}\n{HASHED_2222} {KEY_A}\n");
        assert_eq!(
            check(&text, "example.com", 22, &plain(KEY_A)),
            HostKeyStatus::Known
        );
        assert_eq!(
            check(&text, "example.com", 2222, &plain(KEY_A)),
            HostKeyStatus::Known
        );
        assert_eq!(
            check(&text, "example.com", 2223, &plain(KEY_A)),
            HostKeyStatus::Unknown
        );
        assert_eq!(
            check(&text, "example.org", 22, &plain(KEY_A)),
            HostKeyStatus::Unknown
        );
        assert!(matches!(
            check(&text, "example.com", 22, &plain(KEY_B)),
            HostKeyStatus::Changed { .. }
        ));
    }

    #[test]
    fn wildcards_and_negation() {
        let text = format!("*.example.com,!bad.example.com,192.168.1.? {KEY_A}\n");
        let k = plain(KEY_A);
        assert_eq!(
            check(&text, "www.example.com", 22, &k),
            HostKeyStatus::Known
        );
        assert_eq!(
            check(&text, "bad.example.com", 22, &k),
            HostKeyStatus::Unknown
        );
        assert_eq!(check(&text, "192.168.1.7", 22, &k), HostKeyStatus::Known);
        assert_eq!(check(&text, "192.168.1.70", 22, &k), HostKeyStatus::Unknown);
        // A negated line does not count as a recorded key either.
        assert_eq!(
            check(&text, "bad.example.com", 22, &plain(KEY_B)),
            HostKeyStatus::Unknown
        );
        // `!host` also excludes the `[host]:22` spelling.
        let text = format!("*,!example.com {KEY_A}\n");
        assert_eq!(check(&text, "example.com", 22, &k), HostKeyStatus::Unknown);
    }

    #[test]
    fn revoked_wins() {
        let text = format!("example.com {KEY_A}\n@revoked * {KEY_A}\n");
        let (_dir, path) = kh(&text);
        assert_eq!(
            check_host_key(
                std::slice::from_ref(&path),
                "example.com",
                22,
                &plain(KEY_A)
            ),
            HostKeyStatus::Revoked {
                file: path,
                line: 2
            }
        );
        // A revoked B says nothing about A.
        let text = format!("example.com {KEY_A}\n@revoked * {KEY_B}\n");
        assert_eq!(
            check(&text, "example.com", 22, &plain(KEY_A)),
            HostKeyStatus::Known
        );
        // Revoking the CA revokes its certificates.
        let text = format!("@cert-authority * {KEY_CA}\n@revoked * {KEY_CA}\n");
        assert!(matches!(
            check(&text, "example.com", 22, &cert(CERT_HOST)),
            HostKeyStatus::Revoked { line: 2, .. }
        ));
    }

    #[test]
    fn cert_authority_is_not_a_host_key() {
        let text = format!("@cert-authority example.com {KEY_A}\n");
        assert_eq!(
            check(&text, "example.com", 22, &plain(KEY_A)),
            HostKeyStatus::Unknown
        );
        assert_eq!(
            check(&text, "example.com", 22, &plain(KEY_B)),
            HostKeyStatus::Unknown
        );
        let text = format!("@cert-authority example.com {KEY_A}\nexample.com {KEY_B}\n");
        assert_eq!(
            check(&text, "example.com", 22, &plain(KEY_B)),
            HostKeyStatus::Known
        );
        // Unknown markers are skipped.
        let text = format!("@trusted example.com {KEY_A}\n");
        assert_eq!(
            check(&text, "example.com", 22, &plain(KEY_A)),
            HostKeyStatus::Unknown
        );
    }

    #[test]
    fn host_certificates() {
        let ca = format!("@cert-authority *.com {KEY_CA}\n");
        assert_eq!(
            check(&ca, "example.com", 22, &cert(CERT_HOST)),
            HostKeyStatus::Known
        );
        assert_eq!(
            check(&ca, "EXAMPLE.COM", 22, &cert(CERT_HOST)),
            HostKeyStatus::Known
        );
        assert_eq!(
            check(&ca, "example.com", 22, &cert(CERT_NO_PRINCIPALS)),
            HostKeyStatus::Known
        );
        // Principal not the host, CA pattern not the host, wrong type, expired, wrong signer.
        assert_eq!(
            check(&ca, "www.com", 22, &cert(CERT_HOST)),
            HostKeyStatus::Unknown
        );
        assert_eq!(
            check(&ca, "example.org", 22, &cert(CERT_NO_PRINCIPALS)),
            HostKeyStatus::Unknown
        );
        for c in [
            CERT_USER,
            CERT_EXPIRED,
            CERT_OTHER_PRINCIPAL,
            CERT_SIGNED_BY_B,
        ] {
            assert_eq!(
                check(&ca, "example.com", 22, &cert(c)),
                HostKeyStatus::Unknown,
                "{c}"
            );
        }
        // A plain entry for the CA key is not a CA.
        let text = format!("example.com {KEY_CA}\nexample.com {KEY_A}\n");
        assert_eq!(
            check(&text, "example.com", 22, &cert(CERT_HOST)),
            HostKeyStatus::Unknown
        );
        // A tampered certificate (key id changed) fails the CA signature check.
        let b64 = base64::engine::general_purpose::STANDARD;
        let (alg, data) = CERT_HOST.split_once(' ').unwrap();
        let mut bytes = b64.decode(data).unwrap();
        let pos = bytes.windows(8).position(|w| w == b"hostcert").unwrap();
        bytes[pos + 7] = b'X';
        let tampered = format!("{alg} {}", b64.encode(bytes));
        assert_eq!(
            check(&ca, "example.com", 22, &cert(&tampered)),
            HostKeyStatus::Unknown
        );
    }

    #[test]
    fn changed_reports_fingerprints() {
        let text = format!("example.com {KEY_A}\nexample.com {KEY_C}\n*.com {KEY_A}\n");
        let (_dir, path) = kh(&text);
        let status = check_host_key(
            std::slice::from_ref(&path),
            "example.com",
            22,
            &plain(KEY_B),
        );
        let rec = |line| RecordedKey {
            file: path.clone(),
            line,
            algorithm: "ssh-ed25519".into(),
            fingerprint: FP_A.into(),
        };
        assert_eq!(
            status,
            HostKeyStatus::Changed {
                recorded: vec![rec(1), rec(3)]
            }
        );
        // An exact match in a later file wins over a mismatch in an earlier one.
        let (_dir2, other) = kh(&format!("example.com {KEY_B}\n"));
        let missing = PathBuf::from("/nonexistent/agentssh/known_hosts");
        assert_eq!(
            check_host_key(&[missing, path, other], "example.com", 22, &plain(KEY_B)),
            HostKeyStatus::Known
        );
    }

    #[test]
    fn different_algorithm_is_unknown() {
        let text = format!("example.com {KEY_C}\n");
        assert_eq!(
            check(&text, "example.com", 22, &plain(KEY_A)),
            HostKeyStatus::Unknown
        );
        let text = format!("example.com {KEY_A}\n");
        assert_eq!(
            check(&text, "example.com", 22, &plain(KEY_C)),
            HostKeyStatus::Unknown
        );
    }

    #[test]
    fn garbage_lines_are_skipped() {
        let (alg, data) = KEY_A.split_once(' ').unwrap();
        let mut text = String::from(
            "garbage\n@revoked\n@cert-authority example.com\nexample.com ssh-ed25519\n\
             example.com ssh-ed25519 !!!notbase64\nexample.com ssh-rsa AAAA\n|1|x|y ssh-ed25519 AAAA\n\
             |1|||| \n\t  \n#\n@\n[\n]:\n,,,\n",
        );
        text.push_str(&format!("example.com {alg} {}\n", &data[..data.len() - 4]));
        text.push_str(&format!("example.com ssh-rsa {data}\n"));
        text.push_str(&format!("example.com {KEY_B}"));
        // Pseudo-random junk, including multi-byte and control characters.
        let mut x: u32 = 12345;
        for _ in 0..200 {
            let line: String = (0..40)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    char::from_u32((x >> 16) % 0x300).unwrap_or('?')
                })
                .collect();
            text.push('\n');
            text.push_str(&line.replace('\n', " "));
        }
        let (_dir, path) = kh(&text);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"\n\xff\xfe invalid utf8\n").unwrap();
        f.write_all(format!("example.com {KEY_A}\n").as_bytes())
            .unwrap();
        drop(f);
        for k in [plain(KEY_A), plain(KEY_B)] {
            assert_eq!(
                check_host_key(std::slice::from_ref(&path), "example.com", 22, &k),
                HostKeyStatus::Known
            );
        }
        assert!(matches!(
            check_host_key(&[path], "example.com", 22, &cert(CERT_HOST)),
            HostKeyStatus::Unknown
        ));
    }

    #[test]
    fn learn_then_check() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("known_hosts");
        let a = key(&format!("{KEY_A} a@test"));
        learn_host_key(&path, "Example.com", 22, &a).unwrap();
        learn_host_key(&path, "example.com", 2222, &key(KEY_C)).unwrap();
        learn_host_key(&path, "example.com", 22, &a).unwrap(); // already there: no new line
        let files = [path.clone()];
        assert_eq!(
            check_host_key(&files, "example.com", 22, &plain(KEY_A)),
            HostKeyStatus::Known
        );
        assert_eq!(
            check_host_key(&files, "example.com", 2222, &plain(KEY_C)),
            HostKeyStatus::Known
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            format!("example.com {KEY_A}\n[example.com]:2222 {KEY_C}\n")
        );
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        // Existing content without a final newline is kept intact.
        std::fs::write(&path, "# mine").unwrap();
        learn_host_key(&path, "10.0.0.1", 22, &a).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("# mine\n10.0.0.1 {KEY_A}\n")
        );
    }

    #[test]
    fn learn_refuses_bad_input() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        for host in ["", "a b", "a,b", "*.com", "@revoked", "|1|x", "a\nb", "!a"] {
            assert!(
                learn_host_key(&path, host, 22, &key(KEY_A)).is_err(),
                "{host:?}"
            );
        }
        assert!(!path.exists());
        // A directory (like /dev/null, not a regular file) is refused, not replaced.
        assert!(learn_host_key(dir.path(), "example.com", 22, &key(KEY_A)).is_err());
        assert!(dir.path().is_dir());
    }

    #[test]
    fn learn_through_symlink_keeps_link() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real_known_hosts");
        let link = dir.path().join("known_hosts");
        std::fs::write(&real, "").unwrap();
        std::os::unix::fs::symlink(&real, &link).unwrap();
        learn_host_key(&link, "example.com", 22, &key(KEY_A)).unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(
            std::fs::read_to_string(&real).unwrap(),
            format!("example.com {KEY_A}\n")
        );
    }
}
