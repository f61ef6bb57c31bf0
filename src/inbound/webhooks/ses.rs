//! Amazon SES, through an SNS topic. Every SNS message is signed: the signature is
//! checked against the certificate at `SigningCertURL`, which must be served over
//! https by `sns.<region>.amazonaws.com` (or a host in `SNS_CERT_HOSTS`, for a test),
//! and the topic must be one of `SES_SNS_TOPIC_ARNS`. A subscription is confirmed by
//! fetching its `SubscribeURL` (from the same kind of host). A notification's SES
//! event (`Bounce`, `Complaint`) names the copy by the envelope sender SES saw (our
//! return address) or our Message-ID among the mail's headers.

use std::{collections::HashMap, sync::Mutex, time::Duration};

use anyhow::{Context, bail};
use base64::{Engine, engine::general_purpose::STANDARD};
use rustls_pki_types::{
    AlgorithmIdentifier, CertificateDer, InvalidSignature, SignatureVerificationAlgorithm, alg_id,
    pem::PemObject,
};
use serde_json::Value;

use super::{Event, Refusal, WebhookSettings, failure, reading, text};
use crate::inbound::Kind;

/// What one SNS call is, once its signature is checked.
#[derive(Debug)]
pub enum Sns {
    /// Subscribe by fetching this URL (checked to be SNS's).
    Subscribe(url::Url),
    Notification(Option<Event>),
    /// Anything else SNS says (an unsubscribe confirmation): nothing to do.
    Other,
}

/// SNS signing certificates already fetched, by URL.
#[derive(Default)]
pub struct CertificateCache(Mutex<HashMap<String, Vec<u8>>>);

/// The string SNS signs: the message's fields, in order, each name and value on a line.
fn string_to_sign(message: &Value, kind: &str) -> Result<String, Refusal> {
    let fields: &[&str] = match kind {
        "Notification" => &[
            "Message",
            "MessageId",
            "Subject",
            "Timestamp",
            "TopicArn",
            "Type",
        ],
        _ => &[
            "Message",
            "MessageId",
            "SubscribeURL",
            "Timestamp",
            "Token",
            "TopicArn",
            "Type",
        ],
    };
    let mut signed = String::new();
    for field in fields {
        match message.get(*field).and_then(Value::as_str) {
            Some(value) => {
                signed.push_str(field);
                signed.push('\n');
                signed.push_str(value);
                signed.push('\n');
            }
            // Only a notification's subject may be absent.
            None if *field == "Subject" => {}
            None => {
                return Err(Refusal::Unreadable(format!(
                    "The SNS message has no {field}."
                )));
            }
        }
    }
    Ok(signed)
}

/// Whether SNS may serve a certificate (or a subscription) from this URL: https from
/// `sns.<region>.amazonaws.com`, or a host named in `SNS_CERT_HOSTS`.
fn sns_url(raw: &str, settings: &WebhookSettings) -> Result<url::Url, Refusal> {
    let url = url::Url::parse(raw).map_err(|_| Refusal::Forged(format!("{raw:?} is not a URL")))?;
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    let with_port = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.clone(),
    };
    let amazon = url.scheme() == "https"
        && host.starts_with("sns.")
        && (host.ends_with(".amazonaws.com") || host.ends_with(".amazonaws.com.cn"))
        && host
            .trim_start_matches("sns.")
            .split('.')
            .next()
            .is_some_and(|region| {
                !region.is_empty()
                    && region
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
    let listed = settings.sns_cert_hosts.iter().any(|allowed| {
        allowed.eq_ignore_ascii_case(&host) || allowed.eq_ignore_ascii_case(&with_port)
    });
    if amazon || listed {
        Ok(url)
    } else {
        Err(Refusal::Forged(format!(
            "{host} is not Amazon SNS: its certificate is not trusted"
        )))
    }
}

/// RSA with SHA-1, for `SignatureVersion` 1 (SNS's default). It is only used to check
/// SNS's own signatures on its messages, never a certificate chain.
#[derive(Debug)]
struct RsaSha1;

impl SignatureVerificationAlgorithm for RsaSha1 {
    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), InvalidSignature> {
        ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
            public_key,
        )
        .verify(message, signature)
        .map_err(|_| InvalidSignature)
    }

    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        alg_id::RSA_ENCRYPTION
    }

    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        // Not used: this checks messages, not certificates.
        alg_id::RSA_PKCS1_SHA256
    }
}

/// Whether `signature` over `signed` is made by the certificate's key.
fn signed_by(cert_pem: &[u8], version: &str, signed: &[u8], signature: &[u8]) -> bool {
    let Ok(der) = CertificateDer::from_pem_slice(cert_pem) else {
        return false;
    };
    let Ok(cert) = webpki::EndEntityCert::try_from(&der) else {
        return false;
    };
    let algorithm: &dyn SignatureVerificationAlgorithm = match version {
        "1" => &RsaSha1,
        "2" => webpki::ring::RSA_PKCS1_2048_8192_SHA256,
        _ => return false,
    };
    cert.verify_signature(algorithm, signed, signature).is_ok()
}

/// Fetches `url` over http(s), with a deadline and a size limit.
pub async fn fetch(url: &url::Url, limit: usize) -> anyhow::Result<Vec<u8>> {
    use http_body_util::{BodyExt, Empty, Limited};
    let host = url.host_str().context("A URL with no host")?.to_owned();
    let port = url.port_or_known_default().context("A URL with no port")?;
    let fetching = async {
        let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .with_context(|| format!("Failed to connect to {host}"))?;
        let stream = match url.scheme() {
            "https" => {
                let name = rustls_pki_types::ServerName::try_from(host.clone())
                    .context("A host TLS cannot check")?;
                crate::inbound::imap::Stream::Tls(Box::new(
                    crate::inbound::imap::public_tls()
                        .connect(name, tcp)
                        .await
                        .with_context(|| format!("TLS with {host} failed"))?,
                ))
            }
            _ => crate::inbound::imap::Stream::Plain(tcp),
        };
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .context("HTTP handshake failed")?;
        tokio::spawn(connection);
        let path = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        };
        let request = hyper::Request::get(path)
            .header(hyper::header::HOST, url.authority())
            .body(Empty::<hyper::body::Bytes>::new())
            .context("A request that cannot be made")?;
        let response = sender
            .send_request(request)
            .await
            .context("The request failed")?;
        if !response.status().is_success() {
            bail!("{url} answered {}", response.status());
        }
        let body = Limited::new(response.into_body(), limit)
            .collect()
            .await
            .map_err(|e| anyhow::anyhow!("Failed to read {url}: {e}"))?;
        Ok(body.to_bytes().to_vec())
    };
    tokio::time::timeout(Duration::from_secs(10), fetching)
        .await
        .with_context(|| format!("{url} took too long"))?
}

/// Checks one SNS call and says what it is.
pub async fn read(
    body: &[u8],
    settings: &WebhookSettings,
    cache: &CertificateCache,
) -> Result<Sns, Refusal> {
    if settings.ses_topics.is_empty() {
        return Err(Refusal::NotConfigured("SES_SNS_TOPIC_ARNS"));
    }
    let message: Value = serde_json::from_slice(body)
        .map_err(|_| Refusal::Unreadable("The body is not an SNS message (JSON).".into()))?;
    let kind = text(&message, "Type").unwrap_or_default();
    let topic = text(&message, "TopicArn").unwrap_or_default();
    if !settings.ses_topics.contains(&topic) {
        return Err(Refusal::Forged(format!(
            "The topic {topic:?} is not one of SES_SNS_TOPIC_ARNS"
        )));
    }
    let signed = string_to_sign(&message, &kind)?;
    let signature = text(&message, "Signature")
        .and_then(|s| STANDARD.decode(s).ok())
        .ok_or_else(|| Refusal::Forged("The SNS message has no signature".into()))?;
    let version = text(&message, "SignatureVersion").unwrap_or_default();
    let cert_url = sns_url(
        &text(&message, "SigningCertURL").unwrap_or_default(),
        settings,
    )?;
    if !cert_url.path().ends_with(".pem") {
        return Err(Refusal::Forged(
            "The signing certificate is not a .pem".into(),
        ));
    }
    let cached = cache.0.lock().unwrap().get(cert_url.as_str()).cloned();
    let cert = match cached {
        Some(cert) => cert,
        None => {
            let cert = fetch(&cert_url, 64 * 1024).await.map_err(|e| {
                Refusal::Forged(format!(
                    "The signing certificate could not be fetched: {e:#}"
                ))
            })?;
            cache
                .0
                .lock()
                .unwrap()
                .insert(cert_url.to_string(), cert.clone());
            cert
        }
    };
    if !signed_by(&cert, &version, signed.as_bytes(), &signature) {
        return Err(Refusal::Forged("The SNS signature does not match".into()));
    }
    match kind.as_str() {
        "SubscriptionConfirmation" => Ok(Sns::Subscribe(sns_url(
            &text(&message, "SubscribeURL").unwrap_or_default(),
            settings,
        )?)),
        "Notification" => Ok(Sns::Notification(notification(&message)?)),
        _ => Ok(Sns::Other),
    }
}

/// The SES event in a notification: a bounce or a complaint (deliveries and the rest
/// are nothing to us).
fn notification(sns: &Value) -> Result<Option<Event>, Refusal> {
    let inner = text(sns, "Message").unwrap_or_default();
    let event: Value = serde_json::from_str(&inner)
        .map_err(|_| Refusal::Unreadable("The SNS message holds no SES event.".into()))?;
    let kind = text(&event, "notificationType").or_else(|| text(&event, "eventType"));
    let mail = &event["mail"];
    let message_id = mail["headers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|h| {
            h["name"]
                .as_str()
                .is_some_and(|n| n.eq_ignore_ascii_case("Message-ID"))
        })
        .and_then(|h| text(h, "value"))
        .or_else(|| text(&mail["commonHeaders"], "messageId"));
    let reading = match kind.as_deref() {
        Some("Bounce") => {
            let bounce = &event["bounce"];
            let first = &bounce["bouncedRecipients"][0];
            let diagnostic = text(first, "diagnosticCode");
            let status = text(first, "status")
                .and_then(|s| crate::inbound::status_code(&s))
                .or_else(|| diagnostic.as_deref().and_then(crate::inbound::status_code));
            let kind = failure(
                text(bounce, "bounceType").as_deref() == Some("Permanent"),
                status.as_deref(),
                diagnostic.as_deref(),
            );
            reading(
                kind,
                text(first, "emailAddress"),
                status,
                diagnostic,
                message_id,
                "ses",
            )
        }
        Some("Complaint") => {
            let complaint = &event["complaint"];
            // "not-spam" is a report that it is not spam.
            let kind = match text(complaint, "complaintFeedbackType").as_deref() {
                Some("not-spam") => Kind::Unknown,
                _ => Kind::Complaint,
            };
            let who = text(&complaint["complainedRecipients"][0], "emailAddress");
            reading(
                kind,
                who,
                None,
                text(complaint, "complaintFeedbackType"),
                message_id,
                "ses",
            )
        }
        _ => return Ok(None),
    };
    Ok(Some(Event {
        id: format!("ses:{}", text(sns, "MessageId").unwrap_or_default()),
        reading,
        envelope_sender: text(mail, "source"),
        reference: None,
        raw: inner.into_bytes(),
    }))
}
