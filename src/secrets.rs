//! Where the secret keys live: `load` settles the key ring from the settings, the key
//! file and the database, makes a key file on a first start, and moves out a key that an
//! earlier version kept in the database (the database never holds a key).

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use anyhow::{Context, bail};

use crate::{
    keys::{KeyRing, MIN_KEY_LEN},
    settings::Settings,
    store::Store,
};

/// What `load` found and did, for the log and for tests.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct KeyReport {
    /// A key the database held, moved into this file.
    pub moved_to: Option<PathBuf>,
    /// A key file made on this start.
    pub created: Option<PathBuf>,
    /// Keys that signed links before and are not in the ring: those links fail.
    pub lost: Vec<String>,
}

/// Settles the key ring from the settings, the key file and the database, and says
/// what it did in the log.
pub async fn load(settings: &Settings, store: &dyn Store) -> anyhow::Result<KeyRing> {
    let (ring, report) = load_with_report(settings, store).await?;
    if let Some(path) = &report.created {
        tracing::info!(path = %path.display(), "Made a new secret key file: keep it, and back it up with the database");
    }
    if let Some(path) = &report.moved_to {
        tracing::warn!(
            path = %path.display(),
            "Moved the secret key out of the database into this key file (mode 0600): keep it with the service, not with database backups"
        );
    }
    for id in &report.lost {
        tracing::warn!(
            key_id = %id,
            "Links and tokens made with the key {id} no longer work: every unsubscribe link in mails already sent with it answers 'not valid', and unused confirmation links fail. To keep them working, put that key back in PREVIOUS_SECRET_KEYS or in the key file (one key a line, after the signing key)"
        );
    }
    Ok(ring)
}

pub async fn load_with_report(
    settings: &Settings,
    store: &dyn Store,
) -> anyhow::Result<(KeyRing, KeyReport)> {
    let mut report = KeyReport::default();
    let key_file = settings.key_file();
    let file = key_file.as_deref();
    let mut from_file = match file {
        Some(path) => read_key_file(path)?,
        None => Vec::new(),
    };
    let signed_before = store.signing_key_ids().await?;

    // A key an earlier version kept in the database moves out once.
    if let Some(legacy) = store.legacy_secret_key().await? {
        let known = settings.secret_key.as_ref() == Some(&legacy)
            || from_file.contains(&legacy)
            || settings.previous_secret_keys.contains(&legacy);
        if !known {
            let Some(path) = file else {
                bail!(
                    "The database holds the secret key that signed the links in mails already sent, and there is no key file to move it into. Set SECRET_KEY_FILE to a path the service may write (it moves the key there once, and keeps using it to check old links), then start again."
                );
            };
            append_key(path, &legacy)?;
            from_file.push(legacy);
            report.moved_to = Some(path.to_owned());
        }
        store.forget_legacy_secret_key().await?;
    }

    let (current, previous) = split_keys(settings, from_file);
    let current = match current {
        Some(key) => key,
        None => {
            let Some(path) = file else {
                bail!(
                    "No secret key: with PostgreSQL, give SECRET_KEY_FILE (or SECRET_KEY). Make one once and keep it: `openssl rand -base64 48 > /etc/newsletter/secret.key && chmod 600 /etc/newsletter/secret.key`, then SECRET_KEY_FILE=/etc/newsletter/secret.key"
                );
            };
            if let Some(id) = signed_before.last() {
                bail!(
                    "The key file {} is missing, but this database has links and tokens signed with the key {id}: a new key would break every one of them. Put back the key file (from a backup, or from another instance on this database), or give the key as SECRET_KEY.",
                    path.display()
                );
            }
            let key = KeyRing::generate_text();
            append_key(path, &key)?;
            report.created = Some(path.to_owned());
            key
        }
    };
    for key in std::iter::once(&current).chain(&previous) {
        if key.len() < MIN_KEY_LEN {
            bail!("Every secret key must be at least {MIN_KEY_LEN} characters long");
        }
    }
    let ring = KeyRing::new(&current, &previous);

    let ids: Vec<String> = ring.keys().map(|k| k.id.to_string()).collect();
    report.lost = signed_before
        .into_iter()
        .filter(|id| !ids.contains(id))
        .collect();
    store
        .record_signing_key_id(&ring.current().id.to_string())
        .await?;
    Ok((ring, report))
}

/// The key ring as far as the settings and the key file give it, without the database
/// and without making anything: enough to check the references that return addresses
/// carry (`newsletter bounces parse`). `None` when there is no key yet.
pub fn ring_without_database(settings: &Settings) -> anyhow::Result<Option<KeyRing>> {
    let from_file = match settings.key_file() {
        Some(path) => read_key_file(&path)?,
        None => Vec::new(),
    };
    let (current, previous) = split_keys(settings, from_file);
    Ok(current.map(|current| KeyRing::new(&current, &previous)))
}

/// The key that signs, and those that only verify: `SECRET_KEY` signs if it is given,
/// or else the key file's first key; the rest of the file and `PREVIOUS_SECRET_KEYS`
/// only verify.
fn split_keys(settings: &Settings, mut from_file: Vec<String>) -> (Option<String>, Vec<String>) {
    let current = match &settings.secret_key {
        Some(key) => Some(key.clone()),
        None => (!from_file.is_empty()).then(|| from_file.remove(0)),
    };
    let mut previous = settings.previous_secret_keys.clone();
    previous.extend(from_file);
    (current, previous)
}

/// The keys in a key file, one a line (blank lines and `#` comments aside); none if the
/// file does not exist yet.
fn read_key_file(path: &Path) -> anyhow::Result<Vec<String>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => {
            return Err(err)
                .with_context(|| format!("Failed to read the key file {}", path.display()));
        }
    };
    warn_if_readable_by_others(path);
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_owned)
        .collect())
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(path = %path.display(), "The key file can be read by other users: chmod 600 it");
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

/// Adds a key as the file's last line, making the file (mode 0600) if it is new.
fn append_key(path: &Path, key: &str) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("Failed to open the key file {}", path.display()))?;
    writeln!(file, "{key}")
        .and_then(|()| file.sync_all())
        .with_context(|| format!("Failed to write the key file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "a secret that is long enough for the test";
    const B: &str = "another secret, also long enough for it";

    #[test]
    fn key_files_hold_one_key_a_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        assert!(read_key_file(&path).unwrap().is_empty());
        append_key(&path, A).unwrap();
        append_key(&path, B).unwrap();
        std::fs::write(&path, format!("# made by hand\n{A}\n\n{B}\n")).unwrap();
        assert_eq!(read_key_file(&path).unwrap(), vec![A, B]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let other = dir.path().join("other.key");
            append_key(&other, A).unwrap();
            let mode = std::fs::metadata(&other).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
