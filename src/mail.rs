//! Sending mail: pooled SMTP connections to the relay in `SMTP_URL`, or, with none set,
//! `.eml` files in the outbox folder so a fresh checkout works with nothing installed.
//! A send either succeeds with the relay's reply, or fails as transient (4xx replies,
//! network faults: try again later) or permanent (5xx replies: give up). With a DKIM
//! key set, every message is signed on its way out.

use std::{path::PathBuf, sync::Arc};

use anyhow::Context;
use lettre::{
    AsyncFileTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, MultiPart, header::HeaderValue},
};

use crate::{dkim::DkimSigner, relay::Relay, settings::Settings};

pub struct Mailer {
    transport: Transport,
    dkim: Option<DkimSigner>,
}

enum Transport {
    Smtp(Arc<Relay>),
    Files {
        transport: AsyncFileTransport<Tokio1Executor>,
        dir: PathBuf,
    },
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
    pub text: String,
    pub html: String,
    /// Headers beyond From, To, Subject, Date and Message-ID (List-Unsubscribe...).
    pub headers: Vec<HeaderValue>,
}

impl Mailer {
    pub async fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let transport = match &settings.smtp_url {
            Some(url) => Transport::Smtp(Relay::new(
                url,
                settings.mail.smtp_timeout,
                settings.mail.concurrency,
            )?),
            None => {
                let dir = settings.outbox_dir.clone();
                tokio::fs::create_dir_all(&dir).await.with_context(|| {
                    format!("Failed to create the outbox folder {}", dir.display())
                })?;
                Transport::Files {
                    transport: AsyncFileTransport::new(&dir),
                    dir,
                }
            }
        };
        let dkim = match &settings.dkim {
            Some(dkim) => Some(DkimSigner::load(
                &dkim.key_file,
                &dkim.domain,
                &dkim.selector,
            )?),
            None => None,
        };
        Ok(Mailer { transport, dkim })
    }

    pub fn writes_files(&self) -> bool {
        matches!(self.transport, Transport::Files { .. })
    }

    /// Sends one message; on success, returns the relay's reply (or the file written).
    pub async fn send(&self, message: Message) -> Result<String, SendError> {
        let envelope = message.envelope();
        let mut bytes = message.formatted();
        if let Some(dkim) = &self.dkim {
            bytes = dkim.sign(&bytes);
        }
        match &self.transport {
            Transport::Smtp(relay) => match relay.send(envelope, &bytes).await {
                Ok(response) => Ok(format!(
                    "{} {}",
                    response.code(),
                    response.message().collect::<Vec<_>>().join(" ")
                )),
                Err(err) if err.is_permanent() => Err(SendError::Permanent(error_chain(&err))),
                Err(err) => Err(SendError::Transient(error_chain(&err))),
            },
            Transport::Files { transport, dir } => match transport.send_raw(envelope, &bytes).await
            {
                Ok(id) => Ok(format!(
                    "written to {}",
                    dir.join(format!("{id}.eml")).display()
                )),
                Err(err) => Err(SendError::Transient(error_chain(&err))),
            },
        }
    }
}

/// An error and its causes on one line: lettre keeps the relay's words in the source.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Builds a multipart/alternative message (plain text first, HTML preferred).
pub fn build_message(from: &Mailbox, mail: OutgoingMail) -> Result<Message, SendError> {
    let to: Mailbox = mail
        .to
        .parse()
        .map_err(|e| SendError::Permanent(format!("Bad recipient address: {e}")))?;
    let domain = from.email.domain().to_owned();
    let builder = Message::builder()
        .from(from.clone())
        .to(to)
        .subject(mail.subject)
        .message_id(Some(format!("<{}@{domain}>", uuid::Uuid::now_v7())))
        .date_now();
    mail.headers
        .into_iter()
        .fold(builder, |builder, header| builder.raw_header(header))
        .multipart(MultiPart::alternative_plain_html(mail.text, mail.html))
        .map_err(|e| SendError::Permanent(format!("Failed to build the message: {e}")))
}
