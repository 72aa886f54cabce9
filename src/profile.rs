//! Saved connection profiles (`profiles.json`).
//!
//! The file lives in the config dir (XDG_CONFIG_HOME honoured), mode 0600, and is replaced
//! atomically, so a crash never leaves a half-written file. A literal password or passphrase
//! is stored only when the user passed one; listings never print it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorCode, Result};
use crate::secret::Secret;

/// One saved target.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Profile {
    /// Host name, address or `~/.ssh/config` alias.
    pub host: String,
    /// Port (default 22, or the ssh_config value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Remote user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Private key file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key_path: Option<PathBuf>,
    /// Environment variable holding the private key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key_env: Option<String>,
    /// Environment variable holding the password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    /// Environment variable holding the key passphrase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passphrase_env: Option<String>,
    /// A literal password, only if the user passed one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    /// A literal passphrase, only if the user passed one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passphrase: Option<Secret>,
    /// Jump hosts, `[user@]host[:port][,...]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_jump: Option<String>,
}

impl Profile {
    /// The profile as JSON with secrets replaced by `"<set>"`.
    pub fn redacted(&self, name: &str) -> serde_json::Value {
        let mut v = serde_json::json!({
            "name": name,
            "host": self.host,
            "port": self.port,
            "username": self.username,
            "private_key_path": self.private_key_path,
            "private_key_env": self.private_key_env,
            "password_env": self.password_env,
            "passphrase_env": self.passphrase_env,
            "proxy_jump": self.proxy_jump,
        });
        if let Some(obj) = v.as_object_mut() {
            obj.retain(|_, val| !val.is_null());
            if self.password.is_some() {
                obj.insert("password".into(), "<set>".into());
            }
            if self.passphrase.is_some() {
                obj.insert("passphrase".into(), "<set>".into());
            }
        }
        v
    }
}

/// The whole file.
#[derive(Debug, Default, Serialize, Deserialize)]
struct ProfileFile {
    #[serde(default)]
    profiles: BTreeMap<String, Profile>,
}

/// Reads and writes `profiles.json`.
#[derive(Debug, Clone)]
pub struct ProfileStore {
    path: PathBuf,
}

impl ProfileStore {
    /// The store at the default path.
    pub fn open_default() -> Result<Self> {
        Ok(ProfileStore {
            path: crate::config::profiles_path()?,
        })
    }

    /// The store at `path` (tests).
    pub fn at(path: PathBuf) -> Self {
        ProfileStore { path }
    }

    fn load(&self) -> Result<ProfileFile> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                Error::new(
                    ErrorCode::LocalIo,
                    format!("{} is not valid profile JSON: {e}", self.path.display()),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ProfileFile::default()),
            Err(e) => Err(Error::local_io(self.path.display(), &e)),
        }
    }

    fn save(&self, file: &ProfileFile) -> Result<()> {
        let data = serde_json::to_vec_pretty(file)
            .map_err(|e| Error::internal(format!("cannot encode profiles: {e}")))?;
        if let Some(dir) = self.path.parent() {
            crate::fsutil::ensure_dir(dir, 0o700)
                .map_err(|e| Error::local_io(dir.display(), &e))?;
        }
        crate::fsutil::atomic_write(&self.path, &data, 0o600)
            .map_err(|e| Error::local_io(self.path.display(), &e))
    }

    /// Adds or replaces `name`. Returns whether it replaced an existing profile.
    pub fn add(&self, name: &str, profile: Profile) -> Result<bool> {
        validate_name(name)?;
        if profile.host.trim().is_empty() {
            return Err(Error::usage("--host must not be empty"));
        }
        let mut file = self.load()?;
        let replaced = file.profiles.insert(name.to_string(), profile).is_some();
        self.save(&file)?;
        Ok(replaced)
    }

    /// Looks up `name`, failing with `profile_not_found`.
    pub fn get(&self, name: &str) -> Result<Profile> {
        self.load()?
            .profiles
            .remove(name)
            .ok_or_else(|| not_found(name))
    }

    /// All profiles, sorted by name.
    pub fn list(&self) -> Result<Vec<(String, Profile)>> {
        Ok(self.load()?.profiles.into_iter().collect())
    }

    /// Deletes `name`, failing with `profile_not_found`.
    pub fn delete(&self, name: &str) -> Result<()> {
        let mut file = self.load()?;
        if file.profiles.remove(name).is_none() {
            return Err(not_found(name));
        }
        self.save(&file)
    }
}

fn not_found(name: &str) -> Error {
    Error::new(
        ErrorCode::ProfileNotFound,
        format!("profile '{name}' not found; run 'agentssh profile list' to see saved profiles"),
    )
}

fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Error::usage(format!(
            "invalid profile name '{name}': use 1-64 letters, digits, '-', '_' or '.'"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn add_read_delete_round_trip_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let store = ProfileStore::at(dir.path().join("sub/profiles.json"));
        let p = Profile {
            host: "h".into(),
            password: Some(Secret::new("hunter2")),
            ..Default::default()
        };
        assert!(!store.add("prod", p.clone()).unwrap());
        assert!(store.add("prod", p.clone()).unwrap());
        assert_eq!(store.get("prod").unwrap(), p);
        let mode = std::fs::metadata(dir.path().join("sub/profiles.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let shown = store.get("prod").unwrap().redacted("prod").to_string();
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("<set>"));
        store.delete("prod").unwrap();
        assert_eq!(
            store.get("prod").unwrap_err().code,
            ErrorCode::ProfileNotFound
        );
        assert_eq!(
            store.delete("prod").unwrap_err().code,
            ErrorCode::ProfileNotFound
        );
    }

    #[test]
    fn bad_names_are_usage_errors() {
        let dir = tempfile::tempdir().unwrap();
        let store = ProfileStore::at(dir.path().join("p.json"));
        for name in ["", "a/b", "x y", "../evil"] {
            let p = Profile {
                host: "h".into(),
                ..Default::default()
            };
            assert_eq!(store.add(name, p).unwrap_err().code, ErrorCode::Usage);
        }
        assert!(!dir.path().join("p.json").exists());
    }

    #[test]
    fn corrupt_file_is_reported_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.json");
        std::fs::write(&path, b"{not json").unwrap();
        let store = ProfileStore::at(path.clone());
        let p = Profile {
            host: "h".into(),
            ..Default::default()
        };
        assert!(store.add("a", p).is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"{not json");
    }
}
