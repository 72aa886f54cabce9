//! `agentssh profile add|list|read|delete`.

use serde_json::json;

use super::args::{ProfileAddArgs, ProfileCommand};
use super::Reply;
use crate::error::Result;
use crate::profile::{Profile, ProfileStore};
use crate::secret::Secret;

/// Runs one profile command.
pub fn run(cmd: ProfileCommand) -> Result<Reply> {
    let store = ProfileStore::open_default()?;
    match cmd {
        ProfileCommand::Add(a) => add(&store, *a),
        ProfileCommand::List => {
            let list: Vec<_> = store.list()?.iter().map(|(n, p)| p.redacted(n)).collect();
            let text = if list.is_empty() {
                "no profiles; add one with: agentssh profile add NAME --host HOST --username USER"
                    .into()
            } else {
                list.iter().map(describe).collect::<Vec<_>>().join("\n")
            };
            Ok(Reply::ok(json!({"profiles": list}), text))
        }
        ProfileCommand::Read { name } => {
            let shown = store.get(&name)?.redacted(&name);
            let text = serde_json::to_string_pretty(&shown).unwrap_or_default();
            Ok(Reply::ok(shown, text))
        }
        ProfileCommand::Delete { name } => {
            store.delete(&name)?;
            Ok(Reply::ok(
                json!({"name": name, "deleted": true}),
                format!("deleted profile '{name}'"),
            ))
        }
    }
}

fn add(store: &ProfileStore, a: ProfileAddArgs) -> Result<Reply> {
    let profile = Profile {
        host: a.host,
        port: a.port,
        username: a.username,
        private_key_path: a.private_key_path,
        private_key_env: a.private_key_env,
        password_env: a.password_env,
        passphrase_env: a.passphrase_env,
        password: a.password.map(Secret::new),
        passphrase: a.passphrase.map(Secret::new),
        proxy_jump: a.proxy_jump,
    };
    let replaced = store.add(&a.name, profile.clone())?;
    let mut data = profile.redacted(&a.name);
    if let Some(o) = data.as_object_mut() {
        o.insert("replaced".into(), replaced.into());
    }
    let verb = if replaced { "replaced" } else { "saved" };
    Ok(Reply::ok(data, format!("{verb} profile '{}'", a.name)))
}

fn describe(p: &serde_json::Value) -> String {
    let s = |k: &str| p.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
    let port = p
        .get("port")
        .and_then(|v| v.as_u64())
        .map(|n| format!(":{n}"))
        .unwrap_or_default();
    let user = match s("username") {
        u if u.is_empty() => String::new(),
        u => format!("{u}@"),
    };
    format!("{}\t{user}{}{port}", s("name"), s("host"))
}
