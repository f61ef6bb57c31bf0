//! Our own pool of connections to the SMTP relay, built from lettre's SMTP client.
//!
//! Why not lettre's `AsyncSmtpTransport`: its sockets never set `TCP_NODELAY`, so every
//! small SMTP command waits for the relay's delayed ACK (about 40 ms a message on each
//! connection), and its pool sends a `NOOP` before each reuse. Here each connection is
//! made on a socket we open with `TCP_NODELAY`, then handed to lettre, which speaks
//! SMTP, STARTTLS, TLS and AUTH on it. A connection goes back to the pool after each
//! successful message and is reused as is; one that fails is dropped.
//!
//! Where the relay offers PIPELINING (RFC 2920), `MAIL`, `RCPT` and `DATA` go in one
//! write and their answers are read in turn: a message costs two round trips, not four,
//! which matters most for a relay across the internet.

use std::{
    borrow::Cow,
    io,
    net::SocketAddr,
    pin::Pin,
    sync::{Arc, Mutex, Weak},
    task::{Context, Poll, ready},
    time::{Duration, Instant},
};

use anyhow::Context as _;
use lettre::{
    address::Envelope,
    transport::smtp::{
        Error as SmtpError,
        authentication::{Credentials, Mechanism},
        client::{AsyncSmtpConnection, AsyncTokioStream, TlsParameters},
        commands::{Ehlo, Mail, Rcpt},
        extension::ClientId,
        response::Response,
    },
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
};

/// A connection unused for this long is closed rather than reused: relays drop idle
/// clients after a while, and a dropped one would cost a message a failed attempt.
const IDLE_LIMIT: Duration = Duration::from_secs(60);

enum Tls {
    None,
    /// STARTTLS after the greeting; `required: false` only when the relay offers it.
    Starttls {
        parameters: TlsParameters,
        required: bool,
    },
    /// TLS from the first byte (`smtps://`).
    Wrapper(TlsParameters),
}

/// Where and how to reach the relay, read from `SMTP_URL` with lettre's rules:
/// `smtp://host[:25]`, `smtp://host[:587]?tls=required|opportunistic`,
/// `smtps://host[:465]`, optional `user:password@` and an EHLO name as the path.
struct Server {
    host: String,
    port: u16,
    tls: Tls,
    credentials: Option<Credentials>,
    hello: ClientId,
}

impl Server {
    fn from_url(text: &str) -> anyhow::Result<Self> {
        let url = url::Url::parse(text).context("SMTP_URL is not a URL")?;
        let host = url
            .host_str()
            .context("SMTP_URL has no host")?
            .trim_matches(['[', ']'])
            .to_owned();
        let tls_param = url
            .query_pairs()
            .find(|(key, _)| key == "tls")
            .map(|(_, value)| value.into_owned());
        let parameters =
            || TlsParameters::new(host.clone()).context("Failed to set up TLS for the SMTP relay");
        let (default_port, tls) = match (url.scheme(), tls_param.as_deref()) {
            ("smtp", None) => (25, Tls::None),
            ("smtp", Some("required")) => (
                587,
                Tls::Starttls {
                    parameters: parameters()?,
                    required: true,
                },
            ),
            ("smtp", Some("opportunistic")) => (
                587,
                Tls::Starttls {
                    parameters: parameters()?,
                    required: false,
                },
            ),
            ("smtps", None) => (465, Tls::Wrapper(parameters()?)),
            (scheme, tls) => anyhow::bail!(
                "SMTP_URL must be smtp://, smtp://...?tls=required, smtp://...?tls=opportunistic \
                 or smtps:// (got scheme {scheme:?}, tls {tls:?})"
            ),
        };
        let decode = |part: &str| -> anyhow::Result<String> {
            Ok(percent_encoding::percent_decode_str(part)
                .decode_utf8()
                .map(Cow::into_owned)?)
        };
        let credentials = match url.password() {
            Some(password) => Some(Credentials::new(
                decode(url.username()).context("SMTP_URL's user name is not UTF-8")?,
                decode(password).context("SMTP_URL's password is not UTF-8")?,
            )),
            None => None,
        };
        let hello = match url.path().trim_matches('/') {
            "" => ClientId::default(),
            name => ClientId::Domain(name.to_owned()),
        };
        Ok(Server {
            port: url.port().unwrap_or(default_port),
            host,
            tls,
            credentials,
            hello,
        })
    }
}

/// A connection, and whether its relay takes pipelined commands.
struct Connection {
    smtp: AsyncSmtpConnection,
    pipelining: bool,
}

struct Idle {
    connection: Connection,
    since: Instant,
}

/// Connections to one relay: at most `max_idle` kept open between messages.
pub struct Relay {
    server: Server,
    timeout: Duration,
    max_idle: usize,
    idle: Mutex<Vec<Idle>>,
}

/// Why a message was not accepted: the relay's reply or what went wrong on the way.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error(transparent)]
    Smtp(#[from] SmtpError),
    #[error("Failed to connect to the SMTP relay")]
    Connect(#[source] io::Error),
    #[error("The SMTP relay did not answer within {0:?}")]
    TimedOut(Duration),
}

impl RelayError {
    /// A 5xx reply: sending the same message again would fail the same way.
    pub fn is_permanent(&self) -> bool {
        matches!(self, RelayError::Smtp(err) if err.is_permanent())
    }
}

impl Relay {
    /// Reads `SMTP_URL`; connects only when the first message is sent.
    pub fn new(url: &str, timeout: Duration, max_idle: usize) -> anyhow::Result<Arc<Self>> {
        let relay = Arc::new(Relay {
            server: Server::from_url(url)?,
            timeout,
            max_idle,
            idle: Mutex::new(Vec::new()),
        });
        tokio::spawn(close_idle_connections(Arc::downgrade(&relay)));
        Ok(relay)
    }

    /// Sends one message on a pooled connection, or on a new one. A pooled connection
    /// that fails without a reply (the relay closed it while it sat idle) is dropped
    /// and the message tried once more on a new connection.
    pub async fn send(&self, envelope: &Envelope, message: &[u8]) -> Result<Response, RelayError> {
        if let Some(mut connection) = self.take_idle() {
            match self.send_on(&mut connection, envelope, message).await {
                Ok(response) => {
                    self.put_back(connection);
                    return Ok(response);
                }
                Err(RelayError::Smtp(err))
                    if !err.is_transient() && !err.is_permanent() && !err.is_client() =>
                {
                    tracing::debug!(error = %err, "A pooled SMTP connection failed; opening a new one");
                }
                Err(err) => return Err(err),
            }
        }
        let mut connection = tokio::time::timeout(self.timeout, self.connect())
            .await
            .map_err(|_| RelayError::TimedOut(self.timeout))??;
        let response = self.send_on(&mut connection, envelope, message).await?;
        self.put_back(connection);
        Ok(response)
    }

    /// Connects as a send would (TLS, EHLO, STARTTLS, AUTH, as `SMTP_URL` says), then
    /// says goodbye without sending anything; returns what happened, for a person.
    pub async fn check(&self) -> Result<String, RelayError> {
        let connection = tokio::time::timeout(self.timeout, self.connect())
            .await
            .map_err(|_| RelayError::TimedOut(self.timeout))??;
        let server = &self.server;
        let mut how = format!(
            "{}:{} answered as {}",
            server.host,
            server.port,
            connection.smtp.server_info().name()
        );
        match &server.tls {
            Tls::Wrapper(_) => how.push_str(", over TLS"),
            Tls::Starttls { .. } if connection.smtp.is_encrypted() => how.push_str(", STARTTLS"),
            _ => how.push_str(", without TLS"),
        }
        if server.credentials.is_some() {
            how.push_str(", signed in (AUTH)");
        }
        quit(connection).await;
        Ok(how)
    }

    async fn send_on(
        &self,
        connection: &mut Connection,
        envelope: &Envelope,
        message: &[u8],
    ) -> Result<Response, RelayError> {
        let smtp = &mut connection.smtp;
        // lettre's own send, one command at a time, checks what a relay must offer for
        // addresses or a message that are not ASCII; ours are, but that is its job.
        let ascii = message.is_ascii()
            && envelope
                .from()
                .into_iter()
                .chain(envelope.to())
                .all(|address| AsRef::<str>::as_ref(address).is_ascii());
        let sent = async {
            if connection.pipelining && ascii {
                pipelined(smtp, envelope, message).await
            } else {
                smtp.send(envelope, message).await
            }
        };
        tokio::time::timeout(self.timeout, sent)
            .await
            .map_err(|_| RelayError::TimedOut(self.timeout))?
            .map_err(RelayError::from)
    }

    /// The most recently used connection that is still fresh; stale ones are closed.
    fn take_idle(&self) -> Option<Connection> {
        let mut idle = self
            .idle
            .lock()
            .expect("the SMTP pool lock is never poisoned");
        while let Some(Idle { connection, since }) = idle.pop() {
            if since.elapsed() < IDLE_LIMIT {
                return Some(connection);
            }
            tokio::spawn(quit(connection));
        }
        None
    }

    fn put_back(&self, connection: Connection) {
        if connection.smtp.has_broken() {
            return;
        }
        let mut idle = self
            .idle
            .lock()
            .expect("the SMTP pool lock is never poisoned");
        if idle.len() < self.max_idle {
            idle.push(Idle {
                connection,
                since: Instant::now(),
            });
        } else {
            tokio::spawn(quit(connection));
        }
    }

    /// Opens a connection: TCP with `TCP_NODELAY`, then TLS, EHLO and AUTH as set.
    async fn connect(&self) -> Result<Connection, RelayError> {
        let server = &self.server;
        let tcp = self.open_socket().await.map_err(RelayError::Connect)?;
        let stream: Box<dyn AsyncTokioStream> = match &server.tls {
            Tls::Wrapper(parameters) => {
                #[allow(deprecated)] // lettre's own TLS stream, the way its transport uses it
                let mut tls =
                    lettre::transport::smtp::client::AsyncNetworkStream::use_existing_tokio1(
                        Box::new(tcp),
                    );
                tls.upgrade_tls(parameters.clone()).await?;
                Box::new(TlsStream(tls))
            }
            _ => Box::new(tcp),
        };
        let mut connection =
            AsyncSmtpConnection::connect_with_transport(stream, &server.hello).await?;
        match &server.tls {
            Tls::Starttls {
                parameters,
                required,
            } if *required || connection.can_starttls() => {
                connection
                    .starttls(parameters.clone(), &server.hello)
                    .await?;
            }
            _ => {}
        }
        // lettre keeps only the extensions it uses from the EHLO answer, so EHLO is said
        // once more (allowed at any time, RFC 5321 §4.1.4; before AUTH, so nothing is
        // lost) to read whether the relay takes pipelined commands.
        // A relay that refuses it for good (against the RFC) is simply not pipelined to.
        let pipelining = match connection.command(Ehlo::new(server.hello.clone())).await {
            Ok(extensions) => extensions
                .message()
                .any(|line| line.trim().eq_ignore_ascii_case("PIPELINING")),
            Err(err) if err.is_permanent() => false,
            Err(err) => return Err(err.into()),
        };
        if let Some(credentials) = &server.credentials {
            connection
                .auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await?;
        }
        Ok(Connection {
            smtp: connection,
            pipelining,
        })
    }

    async fn open_socket(&self) -> io::Result<TcpStream> {
        let server = &self.server;
        let mut last_error = None;
        for address in tokio::net::lookup_host((server.host.as_str(), server.port)).await? {
            match TcpStream::connect(address).await {
                Ok(stream) => {
                    stream.set_nodelay(true)?;
                    return Ok(stream);
                }
                Err(err) => last_error = Some(err),
            }
        }
        Err(last_error.unwrap_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} has no address", server.host),
            )
        }))
    }
}

/// One message with `MAIL`, `RCPT` and `DATA` pipelined (RFC 2920): written at once,
/// their answers read in order. On a refusal the rest of the answers are left unread,
/// and the connection is not used again (`send` drops a connection that failed).
async fn pipelined(
    smtp: &mut AsyncSmtpConnection,
    envelope: &Envelope,
    message: &[u8],
) -> Result<Response, SmtpError> {
    let mut commands = Mail::new(envelope.from().cloned(), Vec::new()).to_string();
    for to in envelope.to() {
        commands.push_str(&Rcpt::new(to.clone(), Vec::new()).to_string());
    }
    commands.push_str("DATA\r\n");
    smtp.command(commands).await?;
    for _ in envelope.to() {
        smtp.read_response().await?;
    }
    smtp.read_response().await?;
    smtp.message(message).await
}

async fn quit(mut connection: Connection) {
    let _ = tokio::time::timeout(Duration::from_secs(5), connection.smtp.quit()).await;
}

/// Closes connections left idle past the limit, until the relay itself is dropped.
async fn close_idle_connections(relay: Weak<Relay>) {
    let mut tick = tokio::time::interval(IDLE_LIMIT / 4);
    loop {
        tick.tick().await;
        let Some(relay) = relay.upgrade() else { return };
        let stale: Vec<Idle> = {
            let mut idle = relay
                .idle
                .lock()
                .expect("the SMTP pool lock is never poisoned");
            let (stale, fresh) = idle
                .drain(..)
                .partition(|c| c.since.elapsed() >= IDLE_LIMIT);
            *idle = fresh;
            stale
        };
        drop(relay);
        for Idle { connection, .. } in stale {
            quit(connection).await;
        }
    }
}

/// lettre's TLS stream (futures-io traits) seen as a tokio stream, so that
/// `connect_with_transport` can speak SMTP on a TLS socket we opened ourselves.
#[allow(deprecated)]
#[derive(Debug)]
struct TlsStream(lettre::transport::smtp::client::AsyncNetworkStream);

impl AsyncRead for TlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let read = ready!(futures_io::AsyncRead::poll_read(
            Pin::new(&mut self.0),
            cx,
            buf.initialize_unfilled()
        ))?;
        buf.advance(read);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for TlsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        futures_io::AsyncWrite::poll_write(Pin::new(&mut self.0), cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        futures_io::AsyncWrite::poll_flush(Pin::new(&mut self.0), cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        futures_io::AsyncWrite::poll_close(Pin::new(&mut self.0), cx)
    }
}

impl AsyncTokioStream for TlsStream {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.peer_addr()
    }
}
