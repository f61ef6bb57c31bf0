//! DKIM: with a key set, every mail arrives signed over the headers RFC 8058 names,
//! and the signature verifies against the public key after its trip through SMTP.

use base64::{Engine, engine::general_purpose::STANDARD as BASE64};
use newsletter::{
    sending::dkim::{relaxed_body, relaxed_header},
    settings::DkimSettings,
};
use ring::{
    digest::{SHA256, digest},
    rand::SystemRandom,
    signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey},
};

use crate::on_both_backends;
use crate::support::{Backend, ReceivedMail, SmtpServer, TestApp};

on_both_backends!(every_mail_is_signed_when_a_key_is_set);

async fn every_mail_is_signed_when_a_key_is_set(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    let public_key = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
        .unwrap()
        .public_key()
        .as_ref()
        .to_vec();
    let key_file = dir.path().join("dkim.pem");
    std::fs::write(
        &key_file,
        format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            BASE64.encode(pkcs8.as_ref())
        ),
    )
    .unwrap();
    let smtp = SmtpServer::start().await;
    let mut app = TestApp::spawn_with(
        backend,
        |s| {
            s.dkim = Some(DkimSettings {
                key_file,
                selector: "news2026".into(),
                domain: "example.org".into(),
            })
        },
        &smtp.url(),
    )
    .await;
    app.smtp = Some(smtp);

    app.confirmed_subscriber("reader@example.org").await;
    let token = app.api_token("ci").await;
    app.send_issue(&token, "Signed and sealed").await;

    let confirmation = app
        .smtp()
        .wait_for_mail_to(
            "reader@example.org",
            "Confirm your subscription to In Partnership",
        )
        .await;
    let signed = verified_headers(&confirmation, &public_key).unwrap();
    assert_eq!(
        signed,
        [
            "from",
            "to",
            "subject",
            "date",
            "message-id",
            "mime-version",
            "content-type"
        ]
    );

    let issue = app
        .smtp()
        .wait_for_mail_to("reader@example.org", "Signed and sealed")
        .await;
    let signed = verified_headers(&issue, &public_key).unwrap();
    for header in [
        "from",
        "subject",
        "list-id",
        "list-unsubscribe",
        "list-unsubscribe-post",
    ] {
        assert!(
            signed.contains(&header.to_owned()),
            "{header} is not signed: {signed:?}"
        );
    }

    // Changing a signed header breaks the signature: the check above can fail.
    let mut forged = issue.clone();
    forged.data = forged.data.replace("Subject: Signed", "Subject: Forged");
    assert_eq!(
        verified_headers(&forged, &public_key),
        Err("the signature does not verify".to_owned())
    );
}

/// Checks the mail's DKIM signature as a receiver would (relaxed/relaxed, Ed25519
/// over SHA-256), and returns the headers it covers.
fn verified_headers(mail: &ReceivedMail, public_key: &[u8]) -> Result<Vec<String>, String> {
    let dkim = mail.header("DKIM-Signature").expect("the mail is signed");
    let tag = |name: &str| -> String {
        dkim.split(';')
            .map(str::trim)
            .find_map(|t| t.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name}= in {dkim}"))
            .replace(' ', "")
    };
    assert_eq!(tag("v"), "1");
    assert_eq!(tag("a"), "ed25519-sha256");
    assert_eq!(tag("c"), "relaxed/relaxed");
    assert_eq!(tag("d"), "example.org");
    assert_eq!(tag("s"), "news2026");

    let (_, body) = mail.data.split_once("\r\n\r\n").expect("a body");
    if tag("bh") != BASE64.encode(digest(&SHA256, &relaxed_body(body.as_bytes()))) {
        return Err("the body hash does not match".into());
    }

    let names: Vec<String> = tag("h").split(':').map(str::to_owned).collect();
    let mut data = Vec::new();
    for name in &names {
        let value = mail
            .header(name)
            .unwrap_or_else(|| panic!("{name} is signed but missing"));
        relaxed_header(format!("{name}: {value}").as_bytes(), &mut data);
    }
    let (unsigned, _) = dkim.rsplit_once("; b=").unwrap();
    relaxed_header(
        format!("DKIM-Signature: {unsigned}; b=").as_bytes(),
        &mut data,
    );
    data.truncate(data.len() - 2);
    UnparsedPublicKey::new(&ED25519, public_key)
        .verify(
            digest(&SHA256, &data).as_ref(),
            &BASE64.decode(tag("b")).unwrap(),
        )
        .map_err(|_| "the signature does not verify".to_owned())?;
    Ok(names)
}
