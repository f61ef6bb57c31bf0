//! Settings: environment variables first, then an optional `newsletter.toml`, then
//! defaults that let `newsletter serve` run on a fresh machine with nothing installed.
//!
//! The TOML file uses the same names in lower case (`database_url = "..."`); its path
//! is `NEWSLETTER_CONFIG`, or `newsletter.toml` in the working directory if present.

use std::{collections::HashMap, path::PathBuf, time::Duration};

use anyhow::{Context, bail};

use crate::{
    audience::budgets::Budgets,
    inbound::{
        imap::ImapSettings,
        verdict::{Breaker, SoftBounces},
        webhooks::{WebhookSettings, sendgrid::VerificationKey},
    },
    keys::MIN_KEY_LEN,
    tokens::ConfirmationToken,
    web::client::Cidr,
};

/// The longest a day count may say: a hundred years.
const MAX_DAYS: u64 = 36_500;

fn days(n: u64) -> Duration {
    Duration::from_secs(n * 86_400)
}

#[derive(Clone, Debug)]
pub struct Settings {
    pub database_url: String,
    /// How many connections a PostgreSQL pool may open (SQLite has one writer).
    pub database_max_connections: u32,
    /// `smtp://host:port`, `smtps://user:pass@host`; `None` writes `.eml` files.
    pub smtp_url: Option<String>,
    pub outbox_dir: PathBuf,
    pub bind_address: String,
    /// Base of every link in a mail and on a page, without a trailing slash.
    pub public_url: String,
    /// `ALLOW_INSECURE_PUBLIC_URL`: send mail through `SMTP_URL` even though
    /// `PUBLIC_URL` is plain http or this machine's own address (a trial).
    pub allow_insecure_public_url: bool,
    pub mail_from: String,
    /// `BOUNCE_ADDRESS`: the mailbox bounces go to. Each copy goes out with its own
    /// return address on it, `local+<ref>@domain`, that names the copy. `None`: mail's
    /// return address is `MAIL_FROM`, as before.
    pub bounce_address: Option<String>,
    /// What bounces and complaints do (see `inbound::verdict`): `SOFT_BOUNCE_LIMIT` soft
    /// bounces within `SOFT_BOUNCE_DAYS` count as a hard one; an issue pauses itself
    /// when hard bounces pass `BREAKER_HARD_BOUNCE_PERCENT` or complaints
    /// `BREAKER_COMPLAINT_PERCENT` of its copies sent, after `BREAKER_MIN_COPIES`.
    pub soft_bounces: SoftBounces,
    pub breaker: Breaker,
    /// `BOUNCE_IMAP_URL` (with `BOUNCE_IMAP_CA_FILE`, `BOUNCE_IMAP_OAUTH_COMMAND` and
    /// `BOUNCE_IMAP_POLL_SECONDS`): the mailbox `serve` reads bounces from.
    pub bounce_imap: Option<ImapSettings>,
    /// What each relay provider's webhook needs to be believed (see
    /// `inbound::webhooks::WebhookSettings`).
    pub webhooks: WebhookSettings,
    /// `SECRET_KEY`: signs tokens and links (see `keys.rs` and `secrets.rs`). `None`: the key file's.
    pub secret_key: Option<String>,
    /// `SECRET_KEY_FILE`; by default `key_file()` puts it beside a SQLite database.
    pub secret_key_file: Option<PathBuf>,
    /// `PREVIOUS_SECRET_KEYS`: keys that no longer sign but still verify.
    pub previous_secret_keys: Vec<String>,
    /// `TRUSTED_PROXIES`: only from these is a client's address taken from
    /// `Forwarded` or `X-Forwarded-For` (see `web/client.rs`).
    pub trusted_proxies: Vec<Cidr>,
    /// `SIGNUP_BUDGET_PER_CLIENT`, `_PER_DOMAIN`, `_TOTAL`: confirmation mails an hour.
    pub signup_budgets: Budgets,
    /// `SIGNUP_FORM_MIN_SECONDS`: a sign-up sent sooner after its page was made is
    /// refused (people take longer; bots do not wait).
    pub signup_form_min_age: Duration,
    pub confirmation_ttl: Duration,
    /// `UNCONFIRMED_GRACE_DAYS`: a sign-up never confirmed is deleted this long after
    /// its last link expired.
    pub unconfirmed_grace: Duration,
    /// `LEFT_RETENTION_DAYS`: someone on no list is reduced to their anonymised ledger
    /// and a suppression entry this long after they left the last one (1 day to
    /// `MAX_DAYS`).
    pub left_retention: Duration,
    /// `HTTP_HEADER_TIMEOUT_SECONDS`: the longest a client may take to send a
    /// request's headers, or leave a kept-alive connection idle.
    pub http_header_timeout: Duration,
    /// `HTTP_MAX_CONNECTIONS`: connections open at once, at most.
    pub http_max_connections: usize,
    /// `METRICS_ADDRESS`: serve `GET /metrics` on this address of its own (such as
    /// `127.0.0.1:9464`), for Prometheus on a private network.
    pub metrics_address: Option<String>,
    /// `METRICS_TOKEN`: `GET /metrics` needs `Authorization: Bearer <token>`, and is
    /// served on the public address too. With neither set, no one can read metrics.
    pub metrics_token: Option<String>,
    /// `SHUTDOWN_GRACE_SECONDS`: how long work in flight may take after SIGTERM.
    pub shutdown_grace: Duration,
    /// The longest the scheduler waits before looking for due issues.
    pub scheduler_interval: Duration,
    pub mail: MailSettings,
    /// Sign every message with DKIM: `DKIM_KEY_FILE` and `DKIM_SELECTOR`, and
    /// `DKIM_DOMAIN` (by default the domain of `MAIL_FROM`).
    pub dkim: Option<DkimSettings>,
}

#[derive(Clone, Debug)]
pub struct DkimSettings {
    /// A PEM private key: RSA (PKCS#1 or PKCS#8) or Ed25519 (PKCS#8).
    pub key_file: PathBuf,
    pub selector: String,
    pub domain: String,
}

#[derive(Clone, Debug)]
pub struct MailSettings {
    /// Whether this instance sends mail. With several instances on one database, some
    /// may serve pages only (`MAIL_WORKER=false`).
    pub worker: bool,
    /// Messages sent at once by the worker (and open SMTP connections).
    pub concurrency: usize,
    /// Rows claimed per batch.
    pub batch_size: u32,
    /// Attempts before a message is marked failed.
    pub max_attempts: u32,
    /// First retry delay; it doubles with every attempt, up to `retry_max`.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// `MAIL_LEASE_SECONDS`: how long a claimed row stays claimed unless its worker
    /// renews the lease (it does, four times a lease, while it lives). A dead worker's
    /// rows are taken by another this long after its last renewal.
    pub lease: Duration,
    /// The longest the worker sleeps with nothing due (it is also woken on new mail).
    pub poll_interval: Duration,
    pub smtp_timeout: Duration,
    /// Issue mails per second and per hour, at most (0: no limit).
    pub rate_per_second: u32,
    pub rate_per_hour: u32,
}

impl Default for MailSettings {
    fn default() -> Self {
        Self {
            worker: true,
            concurrency: 8,
            batch_size: 128,
            max_attempts: 10,
            retry_base: Duration::from_secs(30),
            retry_max: Duration::from_secs(3600),
            lease: Duration::from_secs(10),
            poll_interval: Duration::from_secs(10),
            smtp_timeout: Duration::from_secs(30),
            rate_per_second: 0,
            rate_per_hour: 0,
        }
    }
}

impl Settings {
    /// Reads the process environment and `newsletter.toml`.
    pub fn load() -> anyhow::Result<Self> {
        let file = match std::env::var_os("NEWSLETTER_CONFIG") {
            Some(path) => Some(PathBuf::from(path)),
            None => Some(PathBuf::from("newsletter.toml")).filter(|p| p.exists()),
        };
        let file_values = match file {
            Some(path) => {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("Failed to read {}", path.display()))?;
                parse_toml(&text).with_context(|| format!("Failed to parse {}", path.display()))?
            }
            None => HashMap::new(),
        };
        Self::from_lookup(|key| {
            std::env::var(key)
                .ok()
                .or_else(|| file_values.get(&key.to_ascii_lowercase()).cloned())
                .filter(|v| !v.trim().is_empty())
        })
    }

    /// Builds settings from any source of `KEY -> value`, so tests need no environment.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let bind_address = get("BIND_ADDRESS").unwrap_or_else(|| "127.0.0.1:8080".into());
        let public_url = get("PUBLIC_URL")
            .unwrap_or_else(|| format!("http://{bind_address}"))
            .trim_end_matches('/')
            .to_owned();
        if !(public_url.starts_with("http://") || public_url.starts_with("https://")) {
            bail!("PUBLIC_URL must start with http:// or https://, not {public_url:?}");
        }
        let secret_key = get("SECRET_KEY").map(|key| key.trim().to_owned());
        let previous_secret_keys = list(get("PREVIOUS_SECRET_KEYS"));
        for (name, key) in secret_key.iter().map(|k| ("SECRET_KEY", k)).chain(
            previous_secret_keys
                .iter()
                .map(|k| ("PREVIOUS_SECRET_KEYS", k)),
        ) {
            if key.len() < MIN_KEY_LEN {
                bail!("{name}: every key must be at least {MIN_KEY_LEN} characters long");
            }
        }
        let trusted_proxies = list(get("TRUSTED_PROXIES"))
            .iter()
            .map(|block| {
                block
                    .parse()
                    .map_err(|e| anyhow::anyhow!("TRUSTED_PROXIES: {e}"))
            })
            .collect::<anyhow::Result<Vec<Cidr>>>()?;
        let defaults = MailSettings::default();
        let budgets = Budgets::default();
        let number = |key: &str, default: u64| -> anyhow::Result<u64> {
            get(key).map_or(Ok(default), |v| {
                v.trim()
                    .parse()
                    .with_context(|| format!("{key} must be a whole number, not {v:?}"))
            })
        };
        let flag = |key: &str, default: bool| -> anyhow::Result<bool> {
            match get(key).as_deref().map(str::trim) {
                None => Ok(default),
                Some("true" | "1" | "yes") => Ok(true),
                Some("false" | "0" | "no") => Ok(false),
                Some(other) => bail!("{key} must be true or false, not {other:?}"),
            }
        };
        let worker = flag("MAIL_WORKER", true)?;
        let mail = MailSettings {
            worker,
            concurrency: number("MAIL_CONCURRENCY", defaults.concurrency as u64)?.max(1) as usize,
            batch_size: number("MAIL_BATCH_SIZE", defaults.batch_size.into())?.max(1) as u32,
            max_attempts: number("MAIL_MAX_ATTEMPTS", defaults.max_attempts.into())?.max(1) as u32,
            retry_base: Duration::from_millis(number(
                "MAIL_RETRY_BASE_MS",
                defaults.retry_base.as_millis() as u64,
            )?),
            smtp_timeout: Duration::from_secs(number(
                "SMTP_TIMEOUT_SECONDS",
                defaults.smtp_timeout.as_secs(),
            )?),
            lease: match number("MAIL_LEASE_SECONDS", defaults.lease.as_secs())? {
                n @ 2..=3600 => Duration::from_secs(n),
                n => bail!("MAIL_LEASE_SECONDS must be from 2 to 3600 (seconds), not {n}"),
            },
            rate_per_second: number("MAIL_RATE_PER_SECOND", 0)?.min(u32::MAX.into()) as u32,
            rate_per_hour: number("MAIL_RATE_PER_HOUR", 0)?.min(u32::MAX.into()) as u32,
            ..defaults
        };
        let mail_from =
            get("MAIL_FROM").unwrap_or_else(|| "In Partnership <newsletter@localhost>".into());
        let dkim = match (get("DKIM_KEY_FILE"), get("DKIM_SELECTOR")) {
            (None, None) => None,
            (Some(key_file), Some(selector)) => {
                let domain = match get("DKIM_DOMAIN") {
                    Some(domain) => domain,
                    None => mail_from
                        .trim_end_matches('>')
                        .rsplit_once('@')
                        .map(|(_, domain)| domain.to_owned())
                        .context("DKIM_DOMAIN is needed: MAIL_FROM has no domain")?,
                };
                Some(DkimSettings {
                    key_file: key_file.into(),
                    selector,
                    domain,
                })
            }
            _ => bail!("DKIM_KEY_FILE and DKIM_SELECTOR go together: set both or neither"),
        };
        let percent = |key: &str, default: f64| -> anyhow::Result<f64> {
            get(key).map_or(Ok(default), |v| {
                match v.trim().trim_end_matches('%').parse() {
                    Ok(p) if (0.0..=100.0).contains(&p) => Ok(p),
                    _ => bail!(
                        "{key} must be a percentage from 0 to 100, such as 5 or 0.3, not {v:?}"
                    ),
                }
            })
        };
        let (soft, breaker) = (SoftBounces::default(), Breaker::default());
        let soft_bounces = SoftBounces {
            limit: number("SOFT_BOUNCE_LIMIT", soft.limit as u64)?.clamp(1, 1000) as i64,
            window: chrono::Duration::days(
                number("SOFT_BOUNCE_DAYS", soft.window.num_days() as u64)?.clamp(1, 3650) as i64,
            ),
        };
        let breaker = Breaker {
            min_sent: number("BREAKER_MIN_COPIES", breaker.min_sent as u64)?.min(i64::MAX as u64)
                as i64,
            hard_bounce_percent: percent(
                "BREAKER_HARD_BOUNCE_PERCENT",
                breaker.hard_bounce_percent,
            )?,
            complaint_percent: percent("BREAKER_COMPLAINT_PERCENT", breaker.complaint_percent)?,
        };
        let bounce_imap = get("BOUNCE_IMAP_URL")
            .map(|url| {
                ImapSettings::parse(
                    &url,
                    get("BOUNCE_IMAP_CA_FILE").map(PathBuf::from),
                    get("BOUNCE_IMAP_OAUTH_COMMAND"),
                    Duration::from_secs(number("BOUNCE_IMAP_POLL_SECONDS", 60)?),
                )
            })
            .transpose()?;
        let webhooks = WebhookSettings {
            ses_topics: list(get("SES_SNS_TOPIC_ARNS")),
            sns_cert_hosts: list(get("SNS_CERT_HOSTS")),
            postmark: match (
                get("POSTMARK_WEBHOOK_USER"),
                get("POSTMARK_WEBHOOK_PASSWORD"),
            ) {
                (None, None) => None,
                (Some(user), Some(password)) => Some((user, password)),
                _ => bail!("POSTMARK_WEBHOOK_USER and POSTMARK_WEBHOOK_PASSWORD go together"),
            },
            mailgun_key: get("MAILGUN_WEBHOOK_SIGNING_KEY"),
            sendgrid_key: get("SENDGRID_WEBHOOK_PUBLIC_KEY")
                .map(|key| VerificationKey::parse(&key))
                .transpose()?,
        };
        let metrics_token = get("METRICS_TOKEN").map(|token| token.trim().to_owned());
        if metrics_token
            .as_ref()
            .is_some_and(|t| t.len() < MIN_KEY_LEN)
        {
            bail!(
                "METRICS_TOKEN must be at least {MIN_KEY_LEN} characters long (such as the output of `openssl rand -hex 32`)"
            );
        }
        let bounce_address = get("BOUNCE_ADDRESS")
            .map(|address| bounce_address(&address).map(|()| address))
            .transpose()?;
        Ok(Self {
            database_url: get("DATABASE_URL").unwrap_or_else(|| "sqlite://newsletter.db".into()),
            database_max_connections: number("DATABASE_MAX_CONNECTIONS", 10)?.max(2) as u32,
            smtp_url: get("SMTP_URL"),
            outbox_dir: get("OUTBOX_DIR").unwrap_or_else(|| "outbox".into()).into(),
            bind_address,
            public_url,
            allow_insecure_public_url: flag("ALLOW_INSECURE_PUBLIC_URL", false)?,
            mail_from,
            bounce_address,
            soft_bounces,
            breaker,
            bounce_imap,
            webhooks,
            secret_key,
            secret_key_file: get("SECRET_KEY_FILE").map(PathBuf::from),
            previous_secret_keys,
            trusted_proxies,
            signup_budgets: Budgets {
                per_client: number("SIGNUP_BUDGET_PER_CLIENT", budgets.per_client.into())?
                    .min(u32::MAX.into()) as u32,
                per_domain: number("SIGNUP_BUDGET_PER_DOMAIN", budgets.per_domain.into())?
                    .min(u32::MAX.into()) as u32,
                total: number("SIGNUP_BUDGET_TOTAL", budgets.total.into())?.min(u32::MAX.into())
                    as u32,
            },
            signup_form_min_age: Duration::from_secs(number("SIGNUP_FORM_MIN_SECONDS", 2)?),
            shutdown_grace: Duration::from_secs(number("SHUTDOWN_GRACE_SECONDS", 30)?),
            http_header_timeout: Duration::from_secs(
                number("HTTP_HEADER_TIMEOUT_SECONDS", 10)?.max(1),
            ),
            http_max_connections: number("HTTP_MAX_CONNECTIONS", 1024)?.max(1) as usize,
            metrics_address: get("METRICS_ADDRESS"),
            metrics_token,
            confirmation_ttl: Duration::from_secs(
                number("CONFIRMATION_TTL_HOURS", 7 * 24)?.max(1) * 3600,
            ),
            unconfirmed_grace: days(number("UNCONFIRMED_GRACE_DAYS", 7)?.min(MAX_DAYS)),
            left_retention: match number("LEFT_RETENTION_DAYS", 365)? {
                n @ 1..=MAX_DAYS => days(n),
                n => bail!("LEFT_RETENTION_DAYS must be from 1 to {MAX_DAYS} (days), not {n}"),
            },
            scheduler_interval: Duration::from_secs(
                number("SCHEDULER_INTERVAL_SECONDS", 30)?.clamp(1, 30),
            ),
            mail,
            dkim,
        })
    }
}

/// A bounce mailbox's address must be a plain address whose local part can take a
/// `+<ref>` after it, and leave room for one (SMTP allows 64 characters).
fn bounce_address(address: &str) -> anyhow::Result<()> {
    let (local, domain) = address
        .rsplit_once('@')
        .context("BOUNCE_ADDRESS must be an address, such as bounces@news.example.org")?;
    let plain = |part: &str| {
        !part.is_empty()
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
    };
    if !plain(local) || !plain(domain) || !domain.contains('.') || domain.contains("..") {
        bail!(
            "BOUNCE_ADDRESS {address:?} must be a plain address (letters, digits, '-', '.' and '_'), such as bounces@news.example.org"
        );
    }
    if local.len() > 20 {
        bail!(
            "BOUNCE_ADDRESS's local part {local:?} is too long: it may be 20 characters at most (such as bounces@news.example.org), since each copy adds a reference of up to 44 characters and SMTP allows 64"
        );
    }
    Ok(())
}

/// A setting that lists several values, separated by commas or spaces.
fn list(value: Option<String>) -> Vec<String> {
    value
        .unwrap_or_default()
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

impl Settings {
    /// The unsubscribe page for a signed token (or a word that names nobody, for a
    /// preview or a test copy): every link a mail carries to leave is built here.
    pub fn unsubscribe_url(&self, token: &str) -> String {
        format!("{}/unsubscribe?token={token}", self.public_url)
    }

    /// The person's own page, for the same (unsubscribe) token.
    pub fn preferences_url(&self, token: &str) -> String {
        format!("{}/preferences?token={token}", self.public_url)
    }

    /// Both of a recipient's own links, for the token.
    pub fn recipient_links(&self, token: &str) -> crate::issues::compose::RecipientLinks {
        crate::issues::compose::RecipientLinks {
            unsubscribe: self.unsubscribe_url(token),
            preferences: self.preferences_url(token),
        }
    }

    /// The page that confirms a subscription with this token: the one link a
    /// confirmation mail carries.
    pub fn confirmation_url(&self, token: &ConfirmationToken) -> String {
        format!(
            "{}/subscriptions/confirm?token={}",
            self.public_url,
            token.encode()
        )
    }

    /// Why mail must not go out with these settings, if it must not. Mail sent through a
    /// relay carries links (confirm, unsubscribe) built on `PUBLIC_URL`: they must reach
    /// the reader, over https. `.eml` files and `ALLOW_INSECURE_PUBLIC_URL` are trials.
    pub fn public_url_problem(&self) -> Option<String> {
        if self.smtp_url.is_none() || self.allow_insecure_public_url {
            return None;
        }
        let url = &self.public_url;
        let authority = url.split_once("://").map_or("", |(_, rest)| rest);
        let authority = authority.split(['/', '?', '#']).next().unwrap_or_default();
        let host = match authority.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or_default(),
            None => authority
                .rsplit_once(':')
                .map_or(authority, |(host, _)| host),
        };
        let local = host.eq_ignore_ascii_case("localhost")
            || host.to_ascii_lowercase().ends_with(".localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified());
        let why = if local {
            "which only this machine can open"
        } else if url.starts_with("http://") {
            "which is plain http: browsers warn, and the links can be read or changed on the way"
        } else {
            return None;
        };
        Some(format!(
            "Mail goes out through SMTP_URL, but PUBLIC_URL is {url}, {why}. Every link in the mail (confirm, unsubscribe) would start with it. Set PUBLIC_URL to the https address people reach this service at (such as https://news.example.org), or, for a trial with a test mail server, set ALLOW_INSECURE_PUBLIC_URL=true."
        ))
    }

    /// The key file: one key a line, the first signing unless `SECRET_KEY` is set,
    /// made on first start when missing. `SECRET_KEY_FILE`, or else `newsletter.key`
    /// beside `newsletter.db`; PostgreSQL has none unless it is given.
    pub fn key_file(&self) -> Option<PathBuf> {
        if let Some(path) = &self.secret_key_file {
            return Some(path.clone());
        }
        let url = &self.database_url;
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))?;
        let path = path.split('?').next()?;
        if path.is_empty() || path.starts_with(':') {
            return None; // in memory
        }
        Some(PathBuf::from(path).with_extension("key"))
    }
}

/// Flattens the top level of a TOML document into strings, so the file and the
/// environment share one lookup.
fn parse_toml(text: &str) -> anyhow::Result<HashMap<String, String>> {
    let table: toml::Table = toml::from_str(text)?;
    table
        .into_iter()
        .map(|(key, value)| {
            let value = match value {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => bail!("{key}: expected a string, number or boolean, found {other:?}"),
            };
            Ok((key.to_ascii_lowercase(), value))
        })
        .collect()
}

#[cfg(test)]
mod tests;
