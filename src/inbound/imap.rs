//! The bounce mailbox over IMAP (`BOUNCE_IMAP_URL`): every message in its folder goes
//! through the pipeline (`Intake::take_mail`), and is then moved, never deleted: to
//! `Processed`, or to `Unrecognised` when a person should look at it. A message the
//! pipeline could not store (the database is down) stays where it is, for next time.
//!
//! Messages are read by UID, a batch at a time. The poller waits with IDLE where the
//! server has it (woken as soon as mail arrives), and otherwise polls. Two instances
//! reading one mailbox do no harm: the store keeps each message once (by its hash), so
//! the second to take it finds a duplicate and only moves it.
//!
//! The connection is TLS: `imaps://` from the start, or `imap://` upgraded with
//! STARTTLS. Plain `imap://` to a server without STARTTLS is only for one on the same
//! host; anywhere else it works with a warning. `BOUNCE_IMAP_CA_FILE` adds a private
//! CA to the public ones. Sign-in is the URL's user and password, or XOAUTH2 with a
//! bearer token printed by `BOUNCE_IMAP_OAUTH_COMMAND` (Microsoft 365, Google).

use std::{
    collections::BTreeMap,
    fmt, io,
    path::PathBuf,
    pin::Pin,
    sync::Arc,
    task::{Context as TaskContext, Poll},
    time::Duration,
};

use anyhow::{Context, anyhow, bail};
use async_imap::{Client, Session, extensions::idle::IdleResponse};
use futures_util::{StreamExt, TryStreamExt};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
    sync::watch,
};
use tokio_rustls::{TlsConnector, client::TlsStream, rustls};

use super::intake::Intake;
use crate::store::Taken;

/// The folders processed messages are moved to.
pub const PROCESSED: &str = "Processed";
pub const UNRECOGNISED: &str = "Unrecognised";

/// Messages fetched in one command.
const BATCH: usize = 200;

/// Messages of a batch taken through the pipeline at once.
const TAKEN_AT_ONCE: usize = 8;

/// How the mailbox is reached.
#[derive(Clone, PartialEq, Eq)]
pub struct ImapSettings {
    pub host: String,
    pub port: u16,
    /// `imaps://`: TLS from the start. Otherwise STARTTLS where the server offers it.
    pub implicit_tls: bool,
    pub user: String,
    pub password: Option<String>,
    /// Prints an OAuth bearer token for XOAUTH2 (instead of the password).
    pub oauth_command: Option<String>,
    pub folder: String,
    /// PEM certificates to trust besides the public CAs.
    pub ca_file: Option<PathBuf>,
    /// How long to wait between looks at a server without IDLE (and the longest an
    /// IDLE lasts before it is renewed).
    pub poll: Duration,
}

impl fmt::Debug for ImapSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the password.
        write!(
            f,
            "{}://{}@{}:{}/{}",
            if self.implicit_tls { "imaps" } else { "imap" },
            self.user,
            self.host,
            self.port,
            self.folder
        )
    }
}

impl ImapSettings {
    /// From `BOUNCE_IMAP_URL` (`imaps://user:password@host[:port]/FOLDER`, the folder
    /// `INBOX` when not given) and the settings that go with it.
    pub fn parse(
        url: &str,
        ca_file: Option<PathBuf>,
        oauth_command: Option<String>,
        poll: Duration,
    ) -> anyhow::Result<Self> {
        let hint = "such as imaps://bounces%40example.org:password@imap.example.org/INBOX";
        let parsed = url::Url::parse(url.trim())
            .map_err(|e| anyhow!("BOUNCE_IMAP_URL is not a URL ({e}): {hint}"))?;
        let implicit_tls = match parsed.scheme() {
            "imaps" => true,
            "imap" => false,
            other => bail!("BOUNCE_IMAP_URL must start with imaps:// or imap://, not {other}://"),
        };
        let host = parsed
            .host_str()
            .filter(|h| !h.is_empty())
            .with_context(|| format!("BOUNCE_IMAP_URL names no server: {hint}"))?
            .trim_matches(['[', ']'])
            .to_owned();
        let decode = |text: &str| {
            percent_encoding::percent_decode_str(text)
                .decode_utf8()
                .map(|t| t.into_owned())
                .map_err(|_| anyhow!("BOUNCE_IMAP_URL: the user or password is not UTF-8"))
        };
        let user = decode(parsed.username())?;
        if user.is_empty() {
            bail!("BOUNCE_IMAP_URL names no user: {hint}");
        }
        let password = parsed.password().map(decode).transpose()?;
        if password.is_none() && oauth_command.is_none() {
            bail!(
                "BOUNCE_IMAP_URL has no password: put it in the URL, or set BOUNCE_IMAP_OAUTH_COMMAND to sign in with an OAuth token"
            );
        }
        let folder = decode(parsed.path().trim_start_matches('/'))?;
        let folder = if folder.is_empty() {
            "INBOX".to_owned()
        } else {
            folder
        };
        if folder.contains(['"', '\\', '\r', '\n']) {
            bail!("BOUNCE_IMAP_URL: the folder name {folder:?} has characters IMAP cannot take");
        }
        Ok(Self {
            port: parsed
                .port()
                .unwrap_or(if implicit_tls { 993 } else { 143 }),
            host,
            implicit_tls,
            user,
            password,
            oauth_command,
            folder,
            ca_file,
            poll: poll.max(Duration::from_secs(1)),
        })
    }

    fn is_local(&self) -> bool {
        self.host == "localhost"
            || self
                .host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

/// The connection: TLS, or plain to a server on this host.
#[derive(Debug)]
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// A TLS client that trusts the public CAs.
pub fn public_tls() -> TlsConnector {
    connector(public_roots())
}

fn public_roots() -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    roots
}

fn connector(roots: rustls::RootCertStore) -> TlsConnector {
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("ring supports the safe default TLS versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

/// The TLS client: the public CAs, and the CA file's certificates.
fn tls_connector(settings: &ImapSettings) -> anyhow::Result<TlsConnector> {
    let mut roots = public_roots();
    if let Some(path) = &settings.ca_file {
        use rustls_pki_types::{CertificateDer, pem::PemObject};
        let mut added = 0;
        for cert in CertificateDer::pem_file_iter(path)
            .with_context(|| format!("Failed to read BOUNCE_IMAP_CA_FILE {}", path.display()))?
        {
            let cert = cert.with_context(|| {
                format!(
                    "BOUNCE_IMAP_CA_FILE {} is not PEM certificates",
                    path.display()
                )
            })?;
            roots
                .add(cert)
                .context("BOUNCE_IMAP_CA_FILE holds a certificate that cannot be a CA")?;
            added += 1;
        }
        if added == 0 {
            bail!(
                "BOUNCE_IMAP_CA_FILE {} holds no certificate (it should be PEM: -----BEGIN CERTIFICATE-----)",
                path.display()
            );
        }
    }
    Ok(connector(roots))
}

async fn tls(settings: &ImapSettings, tcp: TcpStream) -> anyhow::Result<Stream> {
    let name = rustls_pki_types::ServerName::try_from(settings.host.clone())
        .context("BOUNCE_IMAP_URL's server is not a name TLS can check")?;
    let stream = tls_connector(settings)?
        .connect(name, tcp)
        .await
        .with_context(|| format!("TLS with the IMAP server {} failed", settings.host))?;
    Ok(Stream::Tls(Box::new(stream)))
}

/// XOAUTH2 (Google, Microsoft): the user and a bearer token, in one message.
struct XOAuth2 {
    user: String,
    token: String,
}

impl async_imap::Authenticator for &XOAuth2 {
    type Response = String;
    fn process(&mut self, _challenge: &[u8]) -> String {
        format!("user={}\x01auth=Bearer {}\x01\x01", self.user, self.token)
    }
}

/// Runs `BOUNCE_IMAP_OAUTH_COMMAND` for a fresh token (its first line of output).
async fn oauth_token(command: &str) -> anyhow::Result<String> {
    let out = tokio::process::Command::new("sh")
        .args(["-c", command])
        .kill_on_drop(true)
        .output()
        .await
        .context("Failed to run BOUNCE_IMAP_OAUTH_COMMAND")?;
    if !out.status.success() {
        bail!(
            "BOUNCE_IMAP_OAUTH_COMMAND failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let token = String::from_utf8(out.stdout)
        .ok()
        .and_then(|text| text.lines().next().map(|l| l.trim().to_owned()))
        .filter(|token| !token.is_empty())
        .context("BOUNCE_IMAP_OAUTH_COMMAND printed no token")?;
    Ok(token)
}

/// Connects, secures, signs in and opens the folder.
pub async fn connect(settings: &ImapSettings) -> anyhow::Result<Session<Stream>> {
    let tcp = TcpStream::connect((settings.host.as_str(), settings.port))
        .await
        .with_context(|| {
            format!(
                "Failed to connect to the IMAP server {}:{}",
                settings.host, settings.port
            )
        })?;
    let mut client = if settings.implicit_tls {
        Client::new(tls(settings, tcp).await?)
    } else {
        Client::new(Stream::Plain(tcp))
    };
    let greeting = client
        .read_response()
        .await
        .context("The IMAP server hung up before its greeting")?
        .context("The IMAP server hung up before its greeting")?;
    if !settings.implicit_tls {
        // Servers say what they offer in their greeting (Dovecot, Exchange, Gmail do).
        let greeting = String::from_utf8_lossy(greeting.borrow_owner()).to_ascii_uppercase();
        if greeting.contains("STARTTLS") {
            client
                .run_command_and_check_ok("STARTTLS", None)
                .await
                .with_context(|| format!("The IMAP server {} refused STARTTLS", settings.host))?;
            let Stream::Plain(tcp) = client.into_inner() else {
                unreachable!("the stream before STARTTLS is plain")
            };
            client = Client::new(tls(settings, tcp).await?);
        } else if !settings.is_local() {
            tracing::warn!(
                server = %settings.host,
                "The IMAP server offers no STARTTLS: the bounce mailbox's password and mail cross the network unencrypted. Use imaps://, or a server on this host"
            );
        }
    }
    let signed_in = match &settings.oauth_command {
        Some(command) => {
            let auth = XOAuth2 {
                user: settings.user.clone(),
                token: oauth_token(command).await?,
            };
            client.authenticate("XOAUTH2", &auth).await
        }
        None => {
            let password = settings.password.as_deref().unwrap_or_default();
            client.login(&settings.user, password).await
        }
    };
    let mut session = signed_in.map_err(|(err, _)| {
        anyhow!(
            "The IMAP server {} refused the sign-in of {}: {err}",
            settings.host,
            settings.user
        )
    })?;
    for folder in [PROCESSED, UNRECOGNISED] {
        // "Already exists" is the usual answer, and fine.
        let _ = session.create(folder).await;
    }
    session
        .select(&settings.folder)
        .await
        .with_context(|| format!("Failed to open the IMAP folder {:?}", settings.folder))?;
    Ok(session)
}

/// What one look at the mailbox did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Drained {
    pub taken: usize,
    /// Left in the folder, to try again (the pipeline could not store them).
    pub left: usize,
}

/// Takes every message in the open folder through the pipeline, a batch at a time, and
/// moves each one it stored.
pub async fn drain(session: &mut Session<Stream>, intake: &Intake) -> anyhow::Result<Drained> {
    let mut uids: Vec<u32> = session
        .uid_search("ALL")
        .await
        .context("Failed to list the mailbox")?
        .into_iter()
        .collect();
    uids.sort_unstable();
    let mut drained = Drained::default();
    for batch in uids.chunks(BATCH) {
        let messages: Vec<(u32, Vec<u8>)> = session
            .uid_fetch(uid_set(batch), "BODY.PEEK[]")
            .await
            .context("Failed to fetch messages")?
            .try_filter_map(
                |fetch| async move { Ok(fetch.uid.zip(fetch.body().map(<[u8]>::to_vec))) },
            )
            .try_collect()
            .await
            .context("Failed to read the fetched messages")?;
        let mut moves: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
        // Several at a time: each is its own transaction, and the database (PostgreSQL
        // above all) spends most of each waiting for its commit.
        let mut taken = futures_util::stream::iter(messages)
            .map(|(uid, raw)| async move { (uid, intake.take_mail("imap", &raw).await) })
            .buffer_unordered(TAKEN_AT_ONCE);
        while let Some((uid, result)) = taken.next().await {
            match result {
                Ok(taken) => {
                    let folder = match taken {
                        Taken::Stored { outcome, .. } if outcome.needs_a_person() => UNRECOGNISED,
                        Taken::Stored { .. } | Taken::Duplicate => PROCESSED,
                    };
                    moves.entry(folder).or_default().push(uid);
                    drained.taken += 1;
                }
                Err(err) => {
                    tracing::warn!(uid, error = %format!("{err:#}"), "A bounce was not stored; it stays in the mailbox for next time");
                    drained.left += 1;
                }
            }
        }
        for (folder, uids) in moves {
            session
                .uid_mv(uid_set(&uids), folder)
                .await
                .with_context(|| format!("Failed to move messages to {folder}"))?;
        }
    }
    while session.unsolicited_responses.try_recv().is_ok() {}
    Ok(drained)
}

/// A UID set: `1,2,5`.
fn uid_set(uids: &[u32]) -> String {
    uids.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Reads the mailbox until `shutdown` turns true: connects (again after any failure,
/// waiting `poll` first), drains it, and waits for more.
pub async fn run_until_stopped(
    settings: ImapSettings,
    intake: Intake,
    mut shutdown: watch::Receiver<bool>,
) {
    if !settings.implicit_tls && !settings.is_local() {
        tracing::info!(server = %settings.host, "The bounce mailbox is reached with STARTTLS");
    }
    while !*shutdown.borrow() {
        if let Err(err) = session(&settings, &intake, &mut shutdown).await {
            tracing::warn!(mailbox = ?settings, error = %format!("{err:#}"), "Reading the bounce mailbox failed; trying again soon");
            tokio::select! {
                () = tokio::time::sleep(settings.poll) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}

/// One connection: drain, then wait (IDLE, or a poll), until shutdown or a failure.
async fn session(
    settings: &ImapSettings,
    intake: &Intake,
    shutdown: &mut watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut session = connect(settings).await?;
    let idle = session
        .capabilities()
        .await
        .context("Failed to read the IMAP server's capabilities")?
        .has_str("IDLE");
    tracing::info!(mailbox = ?settings, idle, "Reading the bounce mailbox");
    loop {
        let drained = drain(&mut session, intake).await?;
        if drained.taken + drained.left > 0 {
            tracing::info!(
                taken = drained.taken,
                left = drained.left,
                "Read the bounce mailbox"
            );
        }
        if *shutdown.borrow() {
            let _ = session.logout().await;
            return Ok(());
        }
        if idle && drained.left == 0 {
            let mut handle = session.idle();
            handle.init().await.context("IMAP IDLE failed")?;
            let (wait, stop) = handle.wait_with_timeout(settings.poll.max(Duration::from_secs(60)));
            let woke = tokio::select! {
                woke = wait => Some(woke.context("IMAP IDLE failed")?),
                _ = shutdown.changed() => None,
            };
            drop(stop);
            if let Some(IdleResponse::NewData(_)) = woke {
                tracing::debug!("New mail in the bounce mailbox");
            }
            session = handle.done().await.context("Ending IMAP IDLE failed")?;
        } else {
            tokio::select! {
                () = tokio::time::sleep(settings.poll) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_gives_the_server_the_user_and_the_folder_never_showing_the_password() {
        let imap = ImapSettings::parse(
            "imaps://bounces%40example.org:p%40ss@imap.example.org/Bounces",
            None,
            None,
            Duration::from_secs(30),
        )
        .unwrap();
        assert_eq!((imap.host.as_str(), imap.port), ("imap.example.org", 993));
        assert_eq!(imap.user, "bounces@example.org");
        assert_eq!(imap.password.as_deref(), Some("p@ss"));
        assert_eq!(imap.folder, "Bounces");
        assert!(!format!("{imap:?}").contains("p@ss"));
        let plain =
            ImapSettings::parse("imap://u:p@localhost", None, None, Duration::ZERO).unwrap();
        assert_eq!((plain.port, plain.folder.as_str()), (143, "INBOX"));
        assert!(plain.is_local());
        for bad in [
            "pop3://u:p@host/",
            "imaps://host/INBOX",
            "imaps://u@host/INBOX",
            "imaps://u:p@host/a\"b",
        ] {
            assert!(
                ImapSettings::parse(bad, None, None, Duration::ZERO).is_err(),
                "{bad}"
            );
        }
        // With an OAuth command, no password is needed.
        assert!(
            ImapSettings::parse(
                "imaps://u@host/",
                None,
                Some("echo t".into()),
                Duration::ZERO
            )
            .is_ok()
        );
    }

    #[tokio::test]
    async fn xoauth2_sends_the_user_and_a_fresh_token_from_the_command() {
        let token = oauth_token("printf 'ya29.token\\nmore\\n'").await.unwrap();
        assert_eq!(token, "ya29.token");
        let mut auth = &XOAuth2 {
            user: "bounces@example.org".into(),
            token,
        };
        assert_eq!(
            async_imap::Authenticator::process(&mut auth, b""),
            "user=bounces@example.org\x01auth=Bearer ya29.token\x01\x01"
        );
        assert!(
            oauth_token("exit 3")
                .await
                .unwrap_err()
                .to_string()
                .contains("failed")
        );
        assert!(
            oauth_token("true")
                .await
                .unwrap_err()
                .to_string()
                .contains("no token")
        );
    }
}
