//! `newsletter backup FILE`: a consistent copy of the database, taken while the service
//! runs. SQLite: `VACUUM INTO`, which reads one snapshot (what is still in the `-wal`
//! file included) beside the writer without stopping it, into a file only its owner may
//! read; the copy is then opened and checked. PostgreSQL: `pg_dump --format=custom`,
//! its password passed in the environment, never on a command line others can see.
//! A backup never overwrites a file, and never migrates the database it copies.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    str::FromStr,
};

use anyhow::{Context, bail};
use sqlx::{ConnectOptions, Connection, sqlite::SqliteConnectOptions};

/// What was written, for a person to read.
#[derive(Debug)]
pub struct Backup {
    pub file: PathBuf,
    pub bytes: u64,
    /// What the copy holds, as counted in it (SQLite), or the entries `pg_restore`
    /// lists (PostgreSQL).
    pub holds: String,
}

impl std::fmt::Display for Backup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Backed up to {} ({} bytes): {}",
            self.file.display(),
            self.bytes,
            self.holds
        )
    }
}

pub async fn backup(database_url: &str, file: &Path) -> anyhow::Result<Backup> {
    create_private(file)?;
    let made = if database_url.starts_with("sqlite:") {
        sqlite(database_url, file).await
    } else if database_url.starts_with("postgres:") || database_url.starts_with("postgresql:") {
        postgres(database_url, file).await
    } else {
        Err(anyhow::anyhow!(
            "DATABASE_URL must start with sqlite: or postgres:"
        ))
    };
    match made {
        Ok(holds) => Ok(Backup {
            bytes: std::fs::metadata(file)
                .with_context(|| format!("Failed to read {}", file.display()))?
                .len(),
            file: file.to_owned(),
            holds,
        }),
        Err(err) => {
            // Nothing half-written is left to be taken for a backup.
            let _ = std::fs::remove_file(file);
            Err(err)
        }
    }
}

/// The new, empty file, that only its owner may read: it will hold everyone's
/// personal data. An existing file is refused, whatever it holds.
fn create_private(file: &Path) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(file) {
        Ok(_) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => bail!(
            "{} already exists: a backup never overwrites a file; give a new name, such as one with the date in it",
            file.display()
        ),
        Err(err) => Err(err).with_context(|| format!("Failed to create {}", file.display())),
    }
}

async fn sqlite(database_url: &str, file: &Path) -> anyhow::Result<String> {
    let source = SqliteConnectOptions::from_str(database_url)
        .context("Failed to parse the SQLite DATABASE_URL")?;
    if !source.get_filename().exists() {
        bail!(
            "There is no database at {}: check DATABASE_URL",
            source.get_filename().display()
        );
    }
    let mut db = source
        .busy_timeout(std::time::Duration::from_secs(30))
        .connect()
        .await
        .context("Failed to open the SQLite database")?;
    let into = file
        .to_str()
        .context("The backup file's name must be UTF-8")?;
    sqlx::query("VACUUM INTO $1")
        .bind(into)
        .execute(&mut db)
        .await
        .with_context(|| format!("Failed to copy the database into {}", file.display()))?;
    db.close().await.ok();
    check_sqlite_copy(file).await
}

/// Opens the copy read-only, checks it, and says what it holds.
async fn check_sqlite_copy(file: &Path) -> anyhow::Result<String> {
    let mut copy = SqliteConnectOptions::new()
        .filename(file)
        .read_only(true)
        .connect()
        .await
        .with_context(|| format!("Failed to open the copy {}", file.display()))?;
    let check: String = sqlx::query_scalar("PRAGMA quick_check")
        .fetch_one(&mut copy)
        .await
        .context("Failed to check the copy")?;
    if check != "ok" {
        bail!("The copy {} is damaged: {check}", file.display());
    }
    let (subscribers, events, issues): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM subscribers), (SELECT count(*) FROM consent_events),
                (SELECT count(*) FROM issues)",
    )
    .fetch_one(&mut copy)
    .await
    .context("Failed to count what the copy holds")?;
    copy.close().await.ok();
    Ok(format!(
        "{subscribers} subscribers, {events} ledger events, {issues} issues; checked"
    ))
}

/// The URL parameters both sqlx and libpq read.
const LIBPQ_PARAMETERS: &[&str] = &[
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "application_name",
    "options",
];

async fn postgres(database_url: &str, file: &Path) -> anyhow::Result<String> {
    let mut url = url::Url::parse(database_url).context("Failed to parse DATABASE_URL")?;
    let password = url.password().map(|p| {
        percent_encoding::percent_decode_str(p)
            .decode_utf8_lossy()
            .into_owned()
    });
    let _ = url.set_password(None);
    // pg_dump (libpq) refuses parameters only sqlx knows, such as
    // statement-cache-capacity; the rest it reads as sqlx does.
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(key, _)| LIBPQ_PARAMETERS.contains(&key.as_ref()))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    url.set_query(None);
    if !kept.is_empty() {
        url.query_pairs_mut().extend_pairs(kept);
    }
    let mut dump = tokio::process::Command::new("pg_dump");
    dump.args(["--format=custom", "--no-password", "--file"])
        .arg(file)
        .arg("--dbname")
        .arg(url.as_str())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(password) = password {
        dump.env("PGPASSWORD", password);
    }
    let out = dump.output().await.map_err(|err| match err.kind() {
        std::io::ErrorKind::NotFound => anyhow::anyhow!(
            "pg_dump is not installed: install PostgreSQL's client programs (Debian: apt-get install postgresql-client), of the server's version or newer"
        ),
        _ => anyhow::Error::new(err).context("Failed to run pg_dump"),
    })?;
    if !out.status.success() {
        bail!(
            "pg_dump failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let list = tokio::process::Command::new("pg_restore")
        .arg("--list")
        .arg(file)
        .stdin(Stdio::null())
        .output()
        .await
        .context("Failed to run pg_restore --list to check the dump")?;
    if !list.status.success() {
        bail!(
            "pg_restore cannot read the dump: {}",
            String::from_utf8_lossy(&list.stderr).trim()
        );
    }
    let entries = String::from_utf8_lossy(&list.stdout)
        .lines()
        .filter(|line| !line.starts_with(';') && !line.trim().is_empty())
        .count();
    Ok(format!(
        "a pg_dump archive of {entries} entries, which pg_restore reads; restore with pg_restore (see docs/running-it.md)"
    ))
}
