//! `newsletter doctor`: checks what the service needs, one line a check, and says what
//! to do about each that fails: the settings, the database, the secret key file, the
//! relay (connect, EHLO, STARTTLS, AUTH, and nothing sent), the DKIM key (and the DNS
//! record to publish, compared with what DNS has), the bounce mailbox, and that
//! `PUBLIC_URL` answers. Nothing is changed: no migration, no mail, no key made.

use std::{fmt, path::Path, time::Duration};

use crate::{
    ops::dns,
    sending::{dkim::DkimSigner, relay::Relay},
    settings::Settings,
    store,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    /// Works, but not as a newsletter on the internet should.
    Warn,
    Fail,
}

/// One check's outcome.
#[derive(Debug)]
pub struct Line {
    pub verdict: Verdict,
    pub check: &'static str,
    pub said: String,
    /// What to do about it.
    pub todo: Option<String>,
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = match self.verdict {
            Verdict::Ok => "ok",
            Verdict::Warn => "WARN",
            Verdict::Fail => "FAIL",
        };
        write!(f, "{verdict:<4}  {:<14} {}", self.check, self.said)?;
        if let Some(todo) = &self.todo {
            write!(f, " -> {todo}")?;
        }
        Ok(())
    }
}

fn ok(check: &'static str, said: impl Into<String>) -> Line {
    Line {
        verdict: Verdict::Ok,
        check,
        said: said.into(),
        todo: None,
    }
}

fn not_ok(
    verdict: Verdict,
    check: &'static str,
    said: impl Into<String>,
    todo: impl Into<String>,
) -> Line {
    Line {
        verdict,
        check,
        said: said.into(),
        todo: Some(todo.into()),
    }
}

/// Runs every check, giving each line to `report` as it is known.
pub async fn run(settings: &Settings, mut report: impl FnMut(&Line)) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut say = |line: Line| {
        report(&line);
        lines.push(line);
    };
    say(check_settings(settings));
    say(check_database(settings).await);
    say(check_key_file(settings));
    say(check_relay(settings).await);
    for line in check_dkim(settings).await {
        say(line);
    }
    say(check_bounces(settings).await);
    say(check_public_url(settings).await);
    lines
}

fn check_settings(settings: &Settings) -> Line {
    if let Some(problem) = settings.public_url_problem() {
        return not_ok(Verdict::Fail, "settings", "PUBLIC_URL will not do", problem);
    }
    let database = settings
        .database_url
        .split_once(':')
        .map_or("?", |(scheme, _)| scheme);
    ok(
        "settings",
        format!(
            "read: {database} database, PUBLIC_URL {}, mail from {}",
            settings.public_url, settings.mail_from
        ),
    )
}

async fn check_database(settings: &Settings) -> Line {
    const CHECK: &str = "database";
    let url = &settings.database_url;
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .map(|p| p.split('?').next().unwrap_or_default())
        .filter(|p| !p.is_empty() && !p.starts_with(':'))
        && !Path::new(path).exists()
    {
        return not_ok(
            Verdict::Fail,
            CHECK,
            format!("there is no database at {path}"),
            "check DATABASE_URL, or run `newsletter migrate` to make it",
        );
    }
    let store = match store::connect(url, 2).await {
        Ok(store) => store,
        Err(err) => {
            return not_ok(
                Verdict::Fail,
                CHECK,
                format!("{err:#}"),
                "check DATABASE_URL (host, port, name, user and password) and that the server runs",
            );
        }
    };
    let checked = async {
        store.ping().await?;
        store.schema_version().await
    }
    .await;
    store.close().await;
    let latest = if url.starts_with("sqlite:") {
        store::SQLITE_MIGRATIONS.last()
    } else {
        store::POSTGRES_MIGRATIONS.last()
    }
    .map_or(0, |m| m.0);
    match checked {
        Err(err) => not_ok(
            Verdict::Fail,
            CHECK,
            format!("{err:#}"),
            "check that DATABASE_URL's user may read the database",
        ),
        Ok(Some(version)) if version == latest => ok(
            CHECK,
            format!("answers; its schema is up to date (migration {version})"),
        ),
        Ok(Some(version)) if version > latest => not_ok(
            Verdict::Fail,
            CHECK,
            format!("its schema (migration {version}) is newer than this binary's ({latest})"),
            "run the newer binary that migrated it",
        ),
        Ok(version) => not_ok(
            Verdict::Warn,
            CHECK,
            format!(
                "answers; its schema is at migration {} of {latest}",
                version.unwrap_or(0)
            ),
            "`newsletter serve` migrates it as it starts (or run `newsletter migrate`)",
        ),
    }
}

/// A private key file's permissions: its owner's alone.
fn private_file(path: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(format!(
                "{} may be read by others (mode {mode:o})",
                path.display()
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    Ok(())
}

fn check_key_file(settings: &Settings) -> Line {
    const CHECK: &str = "secret key";
    if settings.secret_key.is_some() {
        return ok(
            CHECK,
            format!(
                "SECRET_KEY is set, with {} previous keys",
                settings.previous_secret_keys.len()
            ),
        );
    }
    let Some(path) = settings.key_file() else {
        return not_ok(
            Verdict::Fail,
            CHECK,
            "PostgreSQL has no key file of its own",
            "set SECRET_KEY_FILE to a file of one key a line (`openssl rand -base64 48`), the same for every instance",
        );
    };
    if !path.exists() {
        return not_ok(
            Verdict::Warn,
            CHECK,
            format!("{} does not exist yet", path.display()),
            "`newsletter serve` makes it on its first start; then back it up",
        );
    }
    match private_file(&path) {
        Ok(()) => ok(
            CHECK,
            format!("{}, readable by its owner only", path.display()),
        ),
        Err(problem) => not_ok(
            Verdict::Fail,
            CHECK,
            problem,
            format!("chmod 600 {}", path.display()),
        ),
    }
}

async fn check_relay(settings: &Settings) -> Line {
    const CHECK: &str = "relay";
    let Some(url) = &settings.smtp_url else {
        return not_ok(
            Verdict::Warn,
            CHECK,
            format!(
                "SMTP_URL is not set: mail is written to {} as .eml files",
                settings.outbox_dir.display()
            ),
            "set SMTP_URL to your relay to send mail",
        );
    };
    let timeout = settings.mail.smtp_timeout.min(Duration::from_secs(10));
    let relay = match Relay::new(url, timeout, 1) {
        Ok(relay) => relay,
        Err(err) => {
            return not_ok(
                Verdict::Fail,
                CHECK,
                format!("{err:#}"),
                "fix SMTP_URL (see README.md, Settings)",
            );
        }
    };
    match relay.check().await {
        Ok(how) => ok(CHECK, format!("{how}; nothing sent")),
        Err(err) => {
            let todo = match &err {
                crate::sending::relay::RelayError::Connect(_) => {
                    "check SMTP_URL's host and port, and that this machine may reach the relay (a firewall?)"
                }
                crate::sending::relay::RelayError::TimedOut(_) => {
                    "check the port and the TLS mode: smtps:// for port 465, smtp://...?tls=required for 587"
                }
                crate::sending::relay::RelayError::Smtp(e) if e.to_string().contains("535") => {
                    "check the user name and password in SMTP_URL (percent-encoded: @ is %40)"
                }
                crate::sending::relay::RelayError::Smtp(_) => {
                    "see the relay's words; check SMTP_URL's TLS mode and credentials"
                }
            };
            not_ok(
                Verdict::Fail,
                CHECK,
                crate::sending::mail::error_chain(&err),
                todo,
            )
        }
    }
}

async fn check_dkim(settings: &Settings) -> Vec<Line> {
    const CHECK: &str = "dkim";
    let Some(dkim) = &settings.dkim else {
        return vec![not_ok(
            Verdict::Warn,
            CHECK,
            "mail is not signed",
            "set DKIM_KEY_FILE and DKIM_SELECTOR (see README.md), or many providers will file it as spam",
        )];
    };
    if let Err(problem) = private_file(&dkim.key_file) {
        return vec![not_ok(
            Verdict::Fail,
            CHECK,
            problem,
            format!("chmod 600 {}", dkim.key_file.display()),
        )];
    }
    let signer = match DkimSigner::load(&dkim.key_file, &dkim.domain, &dkim.selector) {
        Ok(signer) => signer,
        Err(err) => {
            return vec![not_ok(
                Verdict::Fail,
                CHECK,
                format!("{err:#}"),
                "give DKIM_KEY_FILE a PEM private key (openssl genpkey, see README.md)",
            )];
        }
    };
    let (name, record) = signer.dns_record();
    let mut lines = vec![ok(
        CHECK,
        format!("the key signs; publish TXT at {name}: \"{record}\""),
    )];
    let key = |text: &str| -> String {
        text.split(';')
            .filter_map(|tag| tag.trim().strip_prefix("p="))
            .map(|p| p.split_whitespace().collect())
            .next()
            .unwrap_or_default()
    };
    let published = match dns::resolver() {
        Ok(server) => dns::txt(server, &name).await,
        Err(err) => Err(err),
    };
    lines.push(match published {
        Err(err) => not_ok(
            Verdict::Warn,
            "dkim dns",
            format!("could not ask DNS for {name}: {err:#}"),
            "check it by hand: dig TXT ".to_owned() + &name,
        ),
        Ok(found) if found.iter().any(|r| key(r) == key(&record)) => {
            ok("dkim dns", format!("{name} has this key"))
        }
        Ok(found) if found.is_empty() => not_ok(
            Verdict::Fail,
            "dkim dns",
            format!("{name} has no TXT record"),
            "publish the record above (DNS may take a while to show it)",
        ),
        Ok(_) => not_ok(
            Verdict::Fail,
            "dkim dns",
            format!("{name} has another key"),
            "publish the record above in its place, or set DKIM_KEY_FILE to the key that DNS has",
        ),
    });
    lines
}

async fn check_bounces(settings: &Settings) -> Line {
    const CHECK: &str = "bounces";
    match (&settings.bounce_address, &settings.bounce_imap) {
        (_, Some(imap)) => {
            let reading = tokio::time::timeout(Duration::from_secs(20), async {
                let mut session = crate::inbound::imap::connect(imap).await?;
                let _ = session.logout().await;
                anyhow::Ok(())
            })
            .await;
            match reading {
                Ok(Ok(())) => ok(
                    CHECK,
                    format!(
                        "signed in to {}:{} and opened {}",
                        imap.host, imap.port, imap.folder
                    ),
                ),
                Ok(Err(err)) => not_ok(
                    Verdict::Fail,
                    CHECK,
                    format!("{err:#}"),
                    "check BOUNCE_IMAP_URL (host, port, user, password percent-encoded, folder)",
                ),
                Err(_) => not_ok(
                    Verdict::Fail,
                    CHECK,
                    format!("{}:{} did not answer within 20 s", imap.host, imap.port),
                    "check BOUNCE_IMAP_URL's host and port (imaps:// is 993)",
                ),
            }
        }
        (Some(address), None) => ok(
            CHECK,
            format!(
                "bounces go to {address}: deliver its mail to `newsletter bounces ingest` (a pipe), or set BOUNCE_IMAP_URL"
            ),
        ),
        (None, None) => not_ok(
            Verdict::Warn,
            CHECK,
            "BOUNCE_ADDRESS is not set: bounces go to MAIL_FROM, and no one reads them here",
            "set BOUNCE_ADDRESS (see README.md, What comes back), so dead addresses stop being mailed",
        ),
    }
}

async fn check_public_url(settings: &Settings) -> Line {
    const CHECK: &str = "public url";
    let health = format!("{}/health", settings.public_url);
    let url = match url::Url::parse(&health) {
        Ok(url) => url,
        Err(err) => {
            return not_ok(Verdict::Fail, CHECK, err.to_string(), "fix PUBLIC_URL");
        }
    };
    match crate::inbound::webhooks::ses::fetch(&url, 64 * 1024).await {
        Ok(body) if String::from_utf8_lossy(&body).contains("\"ok\"") => {
            ok(CHECK, format!("{health} answers from here"))
        }
        Ok(_) => not_ok(
            Verdict::Fail,
            CHECK,
            format!("{health} answers, but not as this service would"),
            "check that the proxy in front sends PUBLIC_URL to `newsletter serve`",
        ),
        Err(err) => not_ok(
            Verdict::Fail,
            CHECK,
            format!("{err:#}"),
            "start `newsletter serve`, and check PUBLIC_URL's DNS, the proxy in front and its certificate",
        ),
    }
}
