//! The providers' webhooks, with real signatures made here from test keys: Amazon SES
//! through SNS (an RSA certificate served from this machine, on a host the test allows;
//! both signature versions), Postmark (basic auth), Mailgun (HMAC) and SendGrid (ECDSA).
//! Each genuine call acts on the copy it names; each forged one is refused and changes
//! nothing.

use std::sync::{Arc, Mutex};

use base64::{Engine, engine::general_purpose::STANDARD};
use newsletter::inbound::webhooks::{WebhookSettings, mailgun, sendgrid::VerificationKey};
use reqwest::StatusCode;
use ring::{
    rand::SystemRandom,
    signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair},
};
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{
    Backend, TestApp,
    returns::{app_with_bounces, copy_to},
};

on_both_backends!(each_provider_is_believed_only_with_its_own_signature,);

const TOPIC: &str = "arn:aws:sns:eu-west-2:123456789012:ses-bounces";
const MAILGUN_KEY: &str = "key-for-the-mailgun-test";

/// An RSA key and a certificate for it, as SNS signs with.
struct SnsSigner {
    dir: tempfile::TempDir,
    key: RsaKeyPair,
}

impl SnsSigner {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "key.pem",
                "-out",
                "cert.pem",
                "-days",
                "2",
                "-subj",
                "/CN=sns.amazonaws.com",
            ])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pem = std::fs::read_to_string(dir.path().join("key.pem")).unwrap();
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let key = RsaKeyPair::from_pkcs8(&STANDARD.decode(body).unwrap()).unwrap();
        Self { dir, key }
    }

    fn cert(&self) -> Vec<u8> {
        std::fs::read(self.dir.path().join("cert.pem")).unwrap()
    }

    /// Signs an SNS message as SNS does, with `version` 1 (SHA-1) or 2 (SHA-256).
    fn sign(&self, message: &mut Value, version: &str) {
        let fields: &[&str] = if message["Type"] == "Notification" {
            &[
                "Message",
                "MessageId",
                "Subject",
                "Timestamp",
                "TopicArn",
                "Type",
            ]
        } else {
            &[
                "Message",
                "MessageId",
                "SubscribeURL",
                "Timestamp",
                "Token",
                "TopicArn",
                "Type",
            ]
        };
        let mut signed = String::new();
        for field in fields {
            if let Some(value) = message[*field].as_str() {
                signed.push_str(&format!("{field}\n{value}\n"));
            }
        }
        let signature = match version {
            "2" => {
                let mut sig = vec![0; self.key.public().modulus_len()];
                self.key
                    .sign(
                        &signature::RSA_PKCS1_SHA256,
                        &SystemRandom::new(),
                        signed.as_bytes(),
                        &mut sig,
                    )
                    .unwrap();
                sig
            }
            _ => {
                // ring signs no SHA-1: openssl does, as SNS's version 1 needs.
                let data = self.dir.path().join("signed");
                std::fs::write(&data, &signed).unwrap();
                let out = std::process::Command::new("openssl")
                    .args(["dgst", "-sha1", "-sign", "key.pem", "signed"])
                    .current_dir(self.dir.path())
                    .output()
                    .unwrap();
                assert!(out.status.success());
                out.stdout
            }
        };
        message["SignatureVersion"] = json!(version);
        message["Signature"] = json!(STANDARD.encode(signature));
    }
}

/// A loopback web server standing in for SNS: the signing certificate, and the
/// subscription URL (it says when that was fetched).
async fn sns_server(cert: Vec<u8>) -> (String, Arc<Mutex<bool>>) {
    let subscribed = Arc::new(Mutex::new(false));
    let flag = subscribed.clone();
    let app = axum::Router::new()
        .route(
            "/SimpleNotificationService-test.pem",
            axum::routing::get(move || async move { cert.clone() }),
        )
        .route(
            "/subscribe",
            axum::routing::get(move || async move {
                *flag.lock().unwrap() = true;
                "<ConfirmSubscriptionResponse/>"
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (host, subscribed)
}

async fn each_provider_is_believed_only_with_its_own_signature(backend: Backend) {
    let signer = SnsSigner::new();
    let (sns_host, subscribed) = sns_server(signer.cert()).await;
    let sendgrid_key = EcdsaKeyPair::from_pkcs8(
        &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        EcdsaKeyPair::generate_pkcs8(
            &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            &SystemRandom::new(),
        )
        .unwrap()
        .as_ref(),
        &SystemRandom::new(),
    )
    .unwrap();
    let webhooks = WebhookSettings {
        ses_topics: vec![TOPIC.into()],
        sns_cert_hosts: vec![sns_host.clone()],
        postmark: Some(("postmark".into(), "pm-secret".into())),
        mailgun_key: Some(MAILGUN_KEY.into()),
        sendgrid_key: Some(
            VerificationKey::parse(&VerificationKey::encode(sendgrid_key.public_key().as_ref()))
                .unwrap(),
        ),
    };
    let app = app_with_bounces(backend, |settings| settings.webhooks = webhooks).await;
    for person in [
        "ses@example.org",
        "pm@example.org",
        "mg@example.org",
        "sg@example.org",
    ] {
        app.confirmed_subscriber(person).await;
    }
    let token = app.api_token("ci").await;
    app.send_issue(&token, "Winter news").await;
    let copies = app.smtp().wait_for_subject("Winter news", 4).await;
    let db = app.db.inspect().await;
    let status_of = |email: &'static str| {
        let db = &db;
        async move {
            db.texts("SELECT s.email || ' ' || sub.status FROM subscriptions sub JOIN subscribers s ON s.id = sub.subscriber_id ORDER BY s.email")
                .await
                .into_iter()
                .flatten()
                .find(|line| line.starts_with(email))
                .unwrap()
        }
    };
    let post = |path: &str, body: Vec<u8>, headers: Vec<(&'static str, String)>| {
        let mut request = app.client.post(format!("{}{path}", app.address)).body(body);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        async move { request.send().await.unwrap().status() }
    };

    // Amazon SES, through SNS: the subscription is confirmed, then a bounce comes.
    let cert_url = format!("http://{sns_host}/SimpleNotificationService-test.pem");
    let mut subscribe = json!({
        "Type": "SubscriptionConfirmation", "MessageId": "sub-1", "Token": "t0k3n",
        "TopicArn": TOPIC, "Message": "You have chosen to subscribe.",
        "SubscribeURL": format!("http://{sns_host}/subscribe"),
        "Timestamp": "2026-12-02T10:00:00.000Z", "SigningCertURL": cert_url,
    });
    signer.sign(&mut subscribe, "1");
    let sns = |message: &Value| {
        post(
            "/webhooks/ses",
            message.to_string().into_bytes(),
            vec![("content-type", "text/plain; charset=UTF-8".into())],
        )
    };
    assert_eq!(sns(&subscribe).await, StatusCode::OK);
    assert!(
        *subscribed.lock().unwrap(),
        "the subscription URL was fetched"
    );

    let ses_copy = copy_to(&copies, "ses@example.org");
    let event = json!({
        "notificationType": "Bounce",
        "bounce": {"bounceType": "Permanent", "bounceSubType": "General",
                   "bouncedRecipients": [{"emailAddress": "ses@example.org", "status": "5.1.1",
                                          "diagnosticCode": "smtp; 550 5.1.1 user unknown"}]},
        "mail": {"source": ses_copy.from, "messageId": "0100018c-ses-id",
                 "commonHeaders": {"messageId": ses_copy.header("Message-ID").unwrap()}},
    });
    let mut notification = json!({
        "Type": "Notification", "MessageId": "note-1", "TopicArn": TOPIC,
        "Message": event.to_string(), "Timestamp": "2026-12-02T10:01:00.000Z",
        "SigningCertURL": cert_url,
    });
    signer.sign(&mut notification, "2");
    let mut forged = notification.clone();
    forged["Message"] = json!(event.to_string().replace("Permanent", "Transient"));
    assert_eq!(
        sns(&forged).await,
        StatusCode::UNAUTHORIZED,
        "a changed message"
    );
    let mut elsewhere = notification.clone();
    elsewhere["SigningCertURL"] = json!("https://attacker.example.net/cert.pem");
    assert_eq!(
        sns(&elsewhere).await,
        StatusCode::UNAUTHORIZED,
        "a certificate from elsewhere"
    );
    let mut other_topic = notification.clone();
    other_topic["TopicArn"] = json!("arn:aws:sns:eu-west-2:999999999999:other");
    signer.sign(&mut other_topic, "2");
    assert_eq!(
        sns(&other_topic).await,
        StatusCode::UNAUTHORIZED,
        "another topic"
    );
    assert_eq!(
        status_of("ses@").await,
        "ses@example.org confirmed",
        "nothing forged counted"
    );
    assert_eq!(sns(&notification).await, StatusCode::OK);
    assert_eq!(status_of("ses@").await, "ses@example.org bounced");

    // Postmark: the webhook's basic auth, and the copy's metadata.
    let pm_copy = copy_to(&copies, "pm@example.org");
    let reference = pm_copy
        .header("X-PM-Metadata-newsletter-copy")
        .expect("each copy names itself to Postmark");
    let complaint = json!({"RecordType": "SpamComplaint", "ID": 42, "Email": "pm@example.org",
                           "Metadata": {"newsletter-copy": reference}})
    .to_string();
    let basic = |credentials: &str| {
        vec![
            (
                "authorization",
                format!("Basic {}", STANDARD.encode(credentials)),
            ),
            ("content-type", "application/json".into()),
        ]
    };
    assert_eq!(
        post(
            "/webhooks/postmark",
            complaint.clone().into_bytes(),
            basic("postmark:wrong")
        )
        .await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        post("/webhooks/postmark", complaint.clone().into_bytes(), vec![]).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(status_of("pm@").await, "pm@example.org confirmed");
    assert_eq!(
        post(
            "/webhooks/postmark",
            complaint.into_bytes(),
            basic("postmark:pm-secret")
        )
        .await,
        StatusCode::OK
    );
    assert_eq!(status_of("pm@").await, "pm@example.org complained");

    // Mailgun: an HMAC of the timestamp and token.
    let mg_copy = copy_to(&copies, "mg@example.org");
    let now = chrono::Utc::now().timestamp().to_string();
    let mailgun_call = |timestamp: &str, signature: String| {
        json!({
            "signature": {"timestamp": timestamp, "token": "a-random-token-50-chars", "signature": signature},
            "event-data": {"id": "mg-event-1", "event": "failed", "severity": "permanent",
                           "recipient": "mg@example.org", "envelope": {"sender": mg_copy.from},
                           "delivery-status": {"code": 550, "message": "5.1.1 The email account does not exist"}},
        })
        .to_string()
        .into_bytes()
    };
    let json_type = || vec![("content-type", "application/json".to_owned())];
    let good = mailgun::signature(MAILGUN_KEY, &now, "a-random-token-50-chars");
    assert_eq!(
        post(
            "/webhooks/mailgun",
            mailgun_call(&now, "0".repeat(64)),
            json_type()
        )
        .await,
        StatusCode::UNAUTHORIZED
    );
    let old = (chrono::Utc::now().timestamp() - 3600).to_string();
    let old_signature = mailgun::signature(MAILGUN_KEY, &old, "a-random-token-50-chars");
    assert_eq!(
        post(
            "/webhooks/mailgun",
            mailgun_call(&old, old_signature),
            json_type()
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "a replay an hour later"
    );
    assert_eq!(status_of("mg@").await, "mg@example.org confirmed");
    assert_eq!(
        post("/webhooks/mailgun", mailgun_call(&now, good), json_type()).await,
        StatusCode::OK
    );
    assert_eq!(status_of("mg@").await, "mg@example.org bounced");

    // SendGrid: an ECDSA signature of the timestamp and the body, many events a call.
    let sg_copy = copy_to(&copies, "sg@example.org");
    let events = json!([
        {"email": "sg@example.org", "event": "delivered", "sg_event_id": "sg-0", "smtp-id": sg_copy.header("Message-ID").unwrap()},
        {"email": "sg@example.org", "event": "bounce", "type": "bounce", "status": "5.1.1",
         "reason": "550 5.1.1 unknown user", "sg_event_id": "sg-1", "smtp-id": sg_copy.header("Message-ID").unwrap()},
    ])
    .to_string();
    let sign = |timestamp: &str, body: &str| {
        let signed = [timestamp.as_bytes(), body.as_bytes()].concat();
        STANDARD.encode(sendgrid_key.sign(&SystemRandom::new(), &signed).unwrap())
    };
    let signed_headers = |signature: String| {
        vec![
            ("x-twilio-email-event-webhook-signature", signature),
            ("x-twilio-email-event-webhook-timestamp", now.clone()),
            ("content-type", "application/json".into()),
        ]
    };
    let tampered = events.replace("5.1.1", "4.2.2");
    assert_eq!(
        post(
            "/webhooks/sendgrid",
            tampered.into_bytes(),
            signed_headers(sign(&now, &events))
        )
        .await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(status_of("sg@").await, "sg@example.org confirmed");
    assert_eq!(
        post(
            "/webhooks/sendgrid",
            events.clone().into_bytes(),
            signed_headers(sign(&now, &events))
        )
        .await,
        StatusCode::OK
    );
    assert_eq!(status_of("sg@").await, "sg@example.org bounced");

    assert_eq!(
        db.texts(
            "SELECT source || ' ' || kind || ' ' || outcome FROM inbound_messages ORDER BY source"
        )
        .await,
        [
            "mailgun hard ended",
            "postmark complaint ended",
            "sendgrid hard ended",
            "ses hard ended"
        ]
        .map(|s| Some(s.to_owned()))
    );
    assert_eq!(
        db.count("SELECT count(*) FROM consent_events WHERE method = 'webhook'")
            .await,
        4,
        "each ending is in the ledger as came by webhook"
    );
}

/// A provider that is not set up has no webhook: 404, whatever is sent.
#[tokio::test]
async fn a_provider_that_is_not_set_up_has_no_webhook() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    for path in [
        "/webhooks/ses",
        "/webhooks/postmark",
        "/webhooks/mailgun",
        "/webhooks/sendgrid",
    ] {
        let response = app
            .client
            .post(format!("{}{path}", app.address))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        let body: Value = response.json().await.unwrap();
        assert!(
            body["error"].as_str().unwrap().contains("not set up"),
            "{body}"
        );
    }
}
