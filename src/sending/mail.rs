//! Sending mail: pooled SMTP connections to the relay in `SMTP_URL`, or, with none set,
//! `.eml` files in the outbox folder so a fresh checkout works with nothing installed.
//! A send either succeeds with the relay's reply, or fails as transient (4xx replies,
//! network faults: try again later) or permanent (5xx replies: give up). With a DKIM
//! key set, every message is signed on its way out.

use std::{path::PathBuf, sync::Arc};

use anyhow::Context;
use lettre::{
    Message,
    message::{
        Body, Mailbox, MultiPart, SinglePart,
        header::{ContentTransferEncoding, ContentType, HeaderValue},
    },
};

use crate::{
    inbound::return_path::ReturnAddresses,
    metrics::{Metrics, RelayResult},
    sending::dkim::DkimSigner,
    sending::relay::Relay,
    sending::signing::SigningPool,
    settings::Settings,
};

pub struct Mailer {
    transport: Transport,
    dkim: Option<SigningPool>,
    metrics: Arc<Metrics>,
}

enum Transport {
    Smtp(Arc<Relay>),
    /// `.eml` files, named by when and to whom (see `file_name`).
    Files(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    Transient(String),
    Permanent(String),
}

/// A rendered mail, ready to address.
pub struct OutgoingMail {
    pub to: String,
    pub subject: String,
    pub parts: Parts,
    /// Headers beyond From, To, Subject, Date and Message-ID (List-Unsubscribe...).
    pub headers: Vec<HeaderValue>,
    /// Where bounces go, when they have a mailbox: this copy's own addresses
    /// (`inbound::return_path`). `None`: the From address. Its Message-ID carries the
    /// reference too, so a bounce that lost the envelope can still be put down to it.
    pub returns: Option<ReturnAddresses>,
}

/// A mail's two parts, plain text first, then HTML.
pub enum Parts {
    /// As written: encoded as they are built.
    Plain { text: String, html: String },
    /// Already quoted-printable, as an issue's copies are (`compose::EncodedIssue`).
    QuotedPrintable { text: Vec<u8>, html: Vec<u8> },
}

impl Mailer {
    pub async fn from_settings(settings: &Settings, metrics: Arc<Metrics>) -> anyhow::Result<Self> {
        let transport = match &settings.smtp_url {
            Some(url) => Transport::Smtp(Relay::new(
                url,
                settings.mail.smtp_timeout,
                settings.mail.concurrency,
            )?),
            None => {
                let dir = settings.outbox_dir.clone();
                // Only its owner may list it: the mails hold people's links.
                let mut folder = tokio::fs::DirBuilder::new();
                folder.recursive(true);
                #[cfg(unix)]
                folder.mode(0o700);
                folder.create(&dir).await.with_context(|| {
                    format!("Failed to create the outbox folder {}", dir.display())
                })?;
                Transport::Files(dir)
            }
        };
        let dkim = match &settings.dkim {
            Some(dkim) => Some(SigningPool::for_this_machine(DkimSigner::load(
                &dkim.key_file,
                &dkim.domain,
                &dkim.selector,
            )?)?),
            None => None,
        };
        Ok(Mailer {
            transport,
            dkim,
            metrics,
        })
    }

    pub fn writes_files(&self) -> bool {
        matches!(self.transport, Transport::Files(_))
    }

    /// Sends one message; on success, returns the relay's reply (or the file written).
    pub async fn send(&self, message: Message) -> Result<String, SendError> {
        let envelope = message.envelope();
        let mut bytes = message.formatted();
        if let Some(dkim) = &self.dkim {
            bytes = dkim.sign(bytes).await;
        }
        match &self.transport {
            Transport::Smtp(relay) => {
                let started = std::time::Instant::now();
                let sent = relay.send(envelope, &bytes).await;
                let (result, answer) = match sent {
                    Ok(response) => (
                        RelayResult::Accepted,
                        Ok(format!(
                            "{} {}",
                            response.code(),
                            response.message().collect::<Vec<_>>().join(" ")
                        )),
                    ),
                    Err(err) if err.is_permanent() => (
                        RelayResult::Refused,
                        Err(SendError::Permanent(error_chain(&err))),
                    ),
                    Err(err) => (
                        RelayResult::Deferred,
                        Err(SendError::Transient(error_chain(&err))),
                    ),
                };
                self.metrics
                    .relay_answer(result, started.elapsed().as_secs_f64());
                answer
            }
            Transport::Files(dir) => {
                // What the final mail server would add: where bounces of it would go.
                if let Some(from) = envelope.from() {
                    bytes.splice(0..0, format!("Return-Path: <{from}>\r\n").into_bytes());
                }
                let to = envelope.to().first().map(|a| a.to_string());
                let path = dir.join(file_name(chrono::Utc::now(), to.as_deref().unwrap_or("")));
                match write_private(&path, &bytes).await {
                    Ok(()) => Ok(format!("written to {}", path.display())),
                    Err(err) => Err(SendError::Transient(format!(
                        "Failed to write {}: {err}",
                        path.display()
                    ))),
                }
            }
        }
    }
}

/// An error and its causes on one line: lettre keeps the relay's words in the source.
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        // lettre's own words often end with its source's: say them once.
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// An outbox file's name: when (UTC, to the millisecond, so names sort by time) and to
/// whom, then a random end: `ls outbox | grep jo@example.org | tail -1` is the newest
/// mail to Jo.
fn file_name(at: chrono::DateTime<chrono::Utc>, to: &str) -> String {
    let to: String = to
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "@.+-_".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    // A v7 id ends in random bits.
    let random = uuid::Uuid::now_v7().simple().to_string();
    format!(
        "{}-{to}-{}.eml",
        at.format("%Y%m%dT%H%M%S%.3fZ"),
        &random[24..]
    )
}

/// Writes a file only its owner can read (mails hold confirmation links), whole or not
/// at all: it is written under a hidden temporary name and renamed, so a person or a
/// program watching the folder never opens half a mail.
async fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("mail");
    let partial = path.with_file_name(format!(".{name}.part"));
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(&partial).await?;
    let written = async {
        file.write_all(bytes).await?;
        file.sync_all().await?;
        tokio::fs::rename(&partial, path).await
    }
    .await;
    if written.is_err() {
        let _ = tokio::fs::remove_file(&partial).await;
    }
    written
}

/// The two parts as multipart/alternative.
fn alternative(parts: Parts, readable: bool) -> MultiPart {
    let part = |content_type: ContentType, body: Body| {
        SinglePart::builder().header(content_type).body(body)
    };
    let (text, html) = match parts {
        Parts::QuotedPrintable { text, html } => {
            let body = |bytes| {
                Body::dangerous_pre_encoded(bytes, ContentTransferEncoding::QuotedPrintable)
            };
            (body(text), body(html))
        }
        // `binary`: the text as it is, with CRLF line ends. Not for a relay (lines may
        // pass 76 characters, which lettre keeps 8bit text under), but every mail
        // program opens it, and each link is one line to copy.
        Parts::Plain { text, html } if readable => {
            let body = |text: String| {
                Body::new_with_encoding(text, ContentTransferEncoding::Binary)
                    .unwrap_or_else(Body::new)
            };
            (body(text), body(html))
        }
        Parts::Plain { text, html } => (Body::new(text), Body::new(html)),
    };
    MultiPart::alternative()
        .singlepart(part(ContentType::TEXT_PLAIN, text))
        .singlepart(part(ContentType::TEXT_HTML, html))
}

/// Builds a multipart/alternative message (plain text first, HTML preferred).
/// `readable` (mail written to a file for a person to open) keeps each part plain UTF-8,
/// so a link can be copied from the file as it is; mail for a relay gets lettre's choice
/// (quoted-printable for text that is not ASCII or has long lines).
pub fn build_message(
    from: &Mailbox,
    mail: OutgoingMail,
    readable: bool,
) -> Result<Message, SendError> {
    let to: Mailbox = mail
        .to
        .parse()
        .map_err(|e| SendError::Permanent(format!("Bad recipient address: {e}")))?;
    let domain = from.email.domain().to_owned();
    let mut builder = Message::builder();
    let unique = uuid::Uuid::now_v7();
    let message_id = match &mail.returns {
        // A v7 id ends in random bits.
        Some(returns) => format!(
            "<{}.{}@{domain}>",
            returns.reference,
            &unique.simple().to_string()[16..]
        ),
        None => format!("<{unique}@{domain}>"),
    };
    let mut headers = mail.headers;
    if let Some(returns) = &mail.returns {
        // Postmark reports a bounce's metadata back: the copy's reference names it.
        headers.push(HeaderValue::new(
            lettre::message::header::HeaderName::new_from_ascii_str(
                "X-PM-Metadata-newsletter-copy",
            ),
            returns.reference.clone(),
        ));
        let sender = returns
            .return_path
            .parse()
            .map_err(|e| SendError::Permanent(format!("Bad return address: {e}")))?;
        let envelope = lettre::address::Envelope::new(Some(sender), vec![to.email.clone()])
            .map_err(|e| SendError::Permanent(format!("Bad envelope: {e}")))?;
        builder = builder.envelope(envelope);
    }
    let builder = builder
        .from(from.clone())
        .to(to)
        .subject(mail.subject)
        .message_id(Some(message_id))
        .date_now();
    headers
        .into_iter()
        .fold(builder, |builder, header| builder.raw_header(header))
        .multipart(alternative(mail.parts, readable))
        .map_err(|e| SendError::Permanent(format!("Failed to build the message: {e}")))
}
