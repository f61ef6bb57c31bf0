//! Secrets: confirmation tokens, the server's secret key, and sealing a token while it
//! waits in the outbox.
//!
//! A confirmation token is 256 random bits, sent to the person as base64url and
//! stored only as its SHA-256 hash. Between the request that makes it and the worker
//! that mails it, the token itself sits in the outbox row sealed (ChaCha20-Poly1305,
//! key derived from the secret key) and the sealed copy is wiped once the mail has
//! been sent or given up, so the database never holds a usable token in clear.
//! Everything here uses `ring`, which rustls already brings in.

use anyhow::{Context, anyhow};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ring::{
    aead, digest, hmac,
    rand::{SecureRandom, SystemRandom},
};

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the operating system's random number generator failed");
    bytes
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    digest::digest(&digest::SHA256, data)
        .as_ref()
        .try_into()
        .expect("SHA-256 is 32 bytes")
}

pub fn sha256_hex(data: &[u8]) -> String {
    sha256(data).iter().map(|b| format!("{b:02x}")).collect()
}

/// A staff API token: `nl_` and 256 random bits in base64url. Only its SHA-256 is
/// stored; it is shown once, when made.
pub fn generate_api_token() -> String {
    format!("nl_{}", URL_SAFE_NO_PAD.encode(random_bytes::<32>()))
}

/// A confirmation token as the person receives it. Debug never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct ConfirmationToken([u8; 32]);

impl std::fmt::Debug for ConfirmationToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConfirmationToken(..)")
    }
}

impl ConfirmationToken {
    pub fn generate() -> Self {
        Self(random_bytes())
    }

    /// Accepts exactly what `encode` produces: 43 base64url characters.
    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        if raw.len() != 43 {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(raw).ok()?;
        Some(Self(bytes.try_into().ok()?))
    }

    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// What the database keeps.
    pub fn hash(&self) -> [u8; 32] {
        sha256(&self.0)
    }

    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        Some(Self(bytes.try_into().ok()?))
    }
}

/// The server's secret, and the keys derived from it.
#[derive(Clone)]
pub struct SecretKey {
    seal_key: std::sync::Arc<aead::LessSafeKey>,
    unsubscribe_key: hmac::Key,
    csrf_key: hmac::Key,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

impl SecretKey {
    /// A fresh secret for a new installation: 256 bits, base64url.
    pub fn generate_text() -> String {
        URL_SAFE_NO_PAD.encode(random_bytes::<32>())
    }

    pub fn new(secret: &str) -> Self {
        let seal_bytes = Self::derive(secret, b"newsletter outbox seal v1");
        let unbound = aead::UnboundKey::new(&aead::CHACHA20_POLY1305, &seal_bytes)
            .expect("a 32-byte ChaCha20-Poly1305 key");
        Self {
            seal_key: std::sync::Arc::new(aead::LessSafeKey::new(unbound)),
            unsubscribe_key: hmac::Key::new(
                hmac::HMAC_SHA256,
                &Self::derive(secret, b"newsletter unsubscribe v1"),
            ),
            csrf_key: hmac::Key::new(
                hmac::HMAC_SHA256,
                &Self::derive(secret, b"newsletter csrf v1"),
            ),
        }
    }

    /// The CSRF token that goes with a session (or a sign-in form's nonce): forms
    /// carry it, and only someone who can read the page can copy it.
    pub fn csrf_token(&self, session: &str) -> String {
        URL_SAFE_NO_PAD.encode(hmac::sign(&self.csrf_key, session.as_bytes()))
    }

    /// Whether `token` is the CSRF token for `session` (in constant time).
    pub fn csrf_valid(&self, session: &str, token: &str) -> bool {
        URL_SAFE_NO_PAD
            .decode(token)
            .is_ok_and(|tag| hmac::verify(&self.csrf_key, session.as_bytes(), &tag).is_ok())
    }

    /// A purpose-bound key, so one secret can serve several uses without reuse.
    fn derive(secret: &str, purpose: &[u8]) -> [u8; 32] {
        let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
        hmac::sign(&key, purpose)
            .as_ref()
            .try_into()
            .expect("HMAC-SHA256 is 32 bytes")
    }

    /// Encrypts a token for the outbox row named by `row_id`; the row id is bound in,
    /// so a sealed token copied to another row does not open.
    pub fn seal(&self, token: &ConfirmationToken, row_id: &[u8]) -> Vec<u8> {
        let nonce_bytes = random_bytes::<{ aead::NONCE_LEN }>();
        let mut sealed = token.0.to_vec();
        self.seal_key
            .seal_in_place_append_tag(
                aead::Nonce::assume_unique_for_key(nonce_bytes),
                aead::Aad::from(row_id),
                &mut sealed,
            )
            .expect("sealing 32 bytes cannot fail");
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&sealed);
        out
    }

    pub fn open(&self, sealed: &[u8], row_id: &[u8]) -> anyhow::Result<ConfirmationToken> {
        let (nonce, ciphertext) = sealed
            .split_at_checked(aead::NONCE_LEN)
            .context("A sealed token is too short")?;
        let nonce = aead::Nonce::try_assume_unique_for_key(nonce)
            .map_err(|_| anyhow!("A sealed token has a bad nonce"))?;
        let mut buffer = ciphertext.to_vec();
        let plain = self
            .seal_key
            .open_in_place(nonce, aead::Aad::from(row_id), &mut buffer)
            .map_err(|_| anyhow!("A sealed token does not open with this SECRET_KEY"))?;
        ConfirmationToken::from_bytes(plain).context("A sealed token has the wrong length")
    }
}

/// Who an unsubscribe link is for, and which issue carried it. The link is signed, not
/// stored: anyone holding it may unsubscribe that person from that list, and nobody
/// can make one for somebody else without the secret key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnsubscribeToken {
    pub subscriber_id: uuid::Uuid,
    pub list_id: uuid::Uuid,
    pub issue_id: Option<uuid::Uuid>,
}

impl UnsubscribeToken {
    const VERSION: u8 = 1;
    const BODY: usize = 1 + 16 * 3;

    fn body(&self) -> [u8; Self::BODY] {
        let mut body = [0u8; Self::BODY];
        body[0] = Self::VERSION;
        body[1..17].copy_from_slice(self.subscriber_id.as_bytes());
        body[17..33].copy_from_slice(self.list_id.as_bytes());
        body[33..49].copy_from_slice(self.issue_id.unwrap_or_default().as_bytes());
        body
    }

    pub fn sign(&self, key: &SecretKey) -> String {
        let body = self.body();
        let tag = hmac::sign(&key.unsubscribe_key, &body);
        let mut token = body.to_vec();
        token.extend_from_slice(tag.as_ref());
        URL_SAFE_NO_PAD.encode(token)
    }

    /// The token's contents, if it was signed with `key` and not changed since.
    pub fn verify(key: &SecretKey, text: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(text.trim()).ok()?;
        let (body, tag) = bytes.split_at_checked(Self::BODY)?;
        if body[0] != Self::VERSION {
            return None;
        }
        hmac::verify(&key.unsubscribe_key, body, tag).ok()?;
        let id = |range: std::ops::Range<usize>| uuid::Uuid::from_slice(&body[range]).ok();
        let issue_id = id(33..49)?;
        Some(Self {
            subscriber_id: id(1..17)?,
            list_id: id(17..33)?,
            issue_id: (!issue_id.is_nil()).then_some(issue_id),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_round_trips_through_its_text_form() {
        let token = ConfirmationToken::generate();
        let text = token.encode();
        assert_eq!(text.len(), 43);
        assert_eq!(ConfirmationToken::parse(&text), Some(token));
    }

    #[test]
    fn malformed_tokens_do_not_parse() {
        for raw in ["", "abc", &"!".repeat(43), &"A".repeat(44), &"A".repeat(42)] {
            assert_eq!(ConfirmationToken::parse(raw), None, "{raw:?}");
        }
    }

    #[test]
    fn tokens_are_unique_and_hashes_differ_from_tokens() {
        let a = ConfirmationToken::generate();
        let b = ConfirmationToken::generate();
        assert_ne!(a, b);
        assert_ne!(a.hash().to_vec(), a.0.to_vec());
    }

    #[test]
    fn sealed_token_opens_only_with_the_same_key_and_row() {
        let key = SecretKey::new("a secret that is long enough for the test");
        let token = ConfirmationToken::generate();
        let sealed = key.seal(&token, b"row-1");
        assert!(!sealed.windows(32).any(|w| w == token.0));
        assert_eq!(key.open(&sealed, b"row-1").unwrap(), token);
        assert!(key.open(&sealed, b"row-2").is_err());
        let other = SecretKey::new("another secret, also long enough for it");
        assert!(other.open(&sealed, b"row-1").is_err());
        assert!(key.open(&sealed[..5], b"row-1").is_err());
    }

    #[test]
    fn unsubscribe_tokens_verify_only_untouched_and_with_the_key() {
        let key = SecretKey::new("a secret that is long enough for the test");
        let token = UnsubscribeToken {
            subscriber_id: uuid::Uuid::now_v7(),
            list_id: uuid::Uuid::now_v7(),
            issue_id: Some(uuid::Uuid::now_v7()),
        };
        let text = token.sign(&key);
        assert_eq!(UnsubscribeToken::verify(&key, &text), Some(token));
        let no_issue = UnsubscribeToken {
            issue_id: None,
            ..token
        };
        assert_eq!(
            UnsubscribeToken::verify(&key, &no_issue.sign(&key)),
            Some(no_issue)
        );
        // Change one character anywhere and it no longer verifies.
        for i in [0, 10, text.len() / 2, text.len() - 1] {
            let mut tampered = text.clone().into_bytes();
            tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(tampered).unwrap();
            assert_eq!(UnsubscribeToken::verify(&key, &tampered), None, "{i}");
        }
        let other = SecretKey::new("another secret, also long enough for it");
        assert_eq!(UnsubscribeToken::verify(&other, &text), None);
        assert_eq!(UnsubscribeToken::verify(&key, "garbage"), None);
        assert_eq!(UnsubscribeToken::verify(&key, ""), None);
    }

    #[test]
    fn csrf_tokens_belong_to_their_session_and_key() {
        let key = SecretKey::new("a secret that is long enough for tests");
        let token = key.csrf_token("session-one");
        assert!(key.csrf_valid("session-one", &token));
        assert!(!key.csrf_valid("session-two", &token));
        assert!(!key.csrf_valid("session-one", "not-a-token"));
        let other = SecretKey::new("another secret that is long enough");
        assert!(!other.csrf_valid("session-one", &token));
    }

    #[test]
    fn debug_output_hides_secrets() {
        let token = ConfirmationToken::generate();
        assert!(!format!("{token:?}").contains(&token.encode()));
    }
}
