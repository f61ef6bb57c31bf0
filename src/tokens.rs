//! Tokens: confirmation tokens, signed unsubscribe links, API tokens.
//!
//! A confirmation token is 256 bits derived from the secret key and its mail's id
//! (`keys::Key::confirmation_token`), sent to the person as base64url and stored only
//! as its SHA-256 hash: the worker derives it again when it builds the mail, so no
//! copy of the database, its free pages or its WAL holds a usable token.
//! Everything here uses `ring`, which rustls already brings in.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ring::{
    digest, hmac,
    rand::{SecureRandom, SystemRandom},
};

use crate::keys::{KeyId, KeyRing};

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
    to_hex(&sha256(data))
}

/// Bytes as lower-case hex.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// 32 bytes from 64 hex digits (either case), if that is what `text` is.
pub fn key_from_hex(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut key = [0u8; 32];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(key)
}

/// A staff API token: `nl_` and 256 random bits in base64url. Only its SHA-256 is
/// stored; it is shown once, when made.
pub fn generate_api_token() -> String {
    format!("nl_{}", URL_SAFE_NO_PAD.encode(random_bytes::<32>()))
}

/// What a token's name may be, in words for the person choosing one.
pub const API_TOKEN_NAME_RULE: &str = "1 to 100 characters, on one line";

/// An API token's name, trimmed, if it keeps `API_TOKEN_NAME_RULE`.
pub fn api_token_name(raw: &str) -> Option<&str> {
    let name = raw.trim();
    let fits = !name.is_empty() && name.chars().count() <= 100;
    (fits && !name.chars().any(char::is_control)).then_some(name)
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

    pub(crate) fn from_bytes(bytes: &[u8]) -> Option<Self> {
        Some(Self(bytes.try_into().ok()?))
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
    /// Version 1 (before key rings) named no key; version 2 names the key that signed it.
    const V1: u8 = 1;
    const V2: u8 = 2;
    const IDS: usize = 16 * 3;

    fn ids(&self) -> [u8; Self::IDS] {
        let mut ids = [0u8; Self::IDS];
        ids[..16].copy_from_slice(self.subscriber_id.as_bytes());
        ids[16..32].copy_from_slice(self.list_id.as_bytes());
        ids[32..].copy_from_slice(self.issue_id.unwrap_or_default().as_bytes());
        ids
    }

    /// Signs with the ring's current key: version, key id, the ids, then the tag.
    pub fn sign(&self, ring: &KeyRing) -> String {
        let key = ring.current();
        let mut token = vec![Self::V2];
        token.extend_from_slice(&key.id.0);
        token.extend_from_slice(&self.ids());
        let tag = hmac::sign(&key.unsubscribe, &token);
        token.extend_from_slice(tag.as_ref());
        URL_SAFE_NO_PAD.encode(token)
    }

    /// The token's contents, if a key of the ring signed it and it is unchanged since.
    pub fn verify(ring: &KeyRing, text: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(text.trim()).ok()?;
        let ids = match *bytes.first()? {
            Self::V1 => {
                let (body, tag) = bytes.split_at_checked(1 + Self::IDS)?;
                ring.keys()
                    .any(|k| hmac::verify(&k.unsubscribe, body, tag).is_ok())
                    .then(|| &body[1..])?
            }
            Self::V2 => {
                let (body, tag) = bytes.split_at_checked(5 + Self::IDS)?;
                let key = ring.get(KeyId(body[1..5].try_into().ok()?))?;
                hmac::verify(&key.unsubscribe, body, tag).ok()?;
                &body[5..]
            }
            _ => return None,
        };
        let id = |range: std::ops::Range<usize>| uuid::Uuid::from_slice(&ids[range]).ok();
        let issue_id = id(32..48)?;
        Some(Self {
            subscriber_id: id(0..16)?,
            list_id: id(16..32)?,
            issue_id: (!issue_id.is_nil()).then_some(issue_id),
        })
    }
}

/// A short-lived link to a person's own page that also lets them download or erase
/// their data: mailed to them when they ask, so that holding it shows they read that
/// mailbox lately (the long-lived link in every issue may have been forwarded).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ManageToken {
    pub subscriber_id: uuid::Uuid,
    /// The list its page's changes are recorded against.
    pub list_id: uuid::Uuid,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

impl ManageToken {
    /// Unlike any unsubscribe token's version, so neither is read as the other.
    const VERSION: u8 = 3;
    const BODY: usize = 1 + 4 + 32 + 8;
    /// How long a mailed link works.
    pub const LIFETIME: chrono::TimeDelta = chrono::TimeDelta::hours(24);

    pub fn sign(&self, ring: &KeyRing) -> String {
        let key = ring.current();
        let mut token = vec![Self::VERSION];
        token.extend_from_slice(&key.id.0);
        token.extend_from_slice(self.subscriber_id.as_bytes());
        token.extend_from_slice(self.list_id.as_bytes());
        token.extend_from_slice(&self.expires_at.timestamp_millis().to_be_bytes());
        let tag = hmac::sign(&key.manage, &token);
        token.extend_from_slice(tag.as_ref());
        URL_SAFE_NO_PAD.encode(token)
    }

    /// The token's contents if a key of the ring signed it, whether or not it has
    /// expired (the page says which).
    pub fn verify(ring: &KeyRing, text: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(text.trim()).ok()?;
        let (body, tag) = bytes.split_at_checked(Self::BODY)?;
        if body[0] != Self::VERSION {
            return None;
        }
        let key = ring.get(KeyId(body[1..5].try_into().ok()?))?;
        hmac::verify(&key.manage, body, tag).ok()?;
        let millis = i64::from_be_bytes(body[37..45].try_into().ok()?);
        Some(Self {
            subscriber_id: uuid::Uuid::from_slice(&body[5..21]).ok()?,
            list_id: uuid::Uuid::from_slice(&body[21..37]).ok()?,
            expires_at: chrono::DateTime::from_timestamp_millis(millis)?,
        })
    }
}

/// The sign-up form's token: when the page was made, and a random part that makes it
/// single use (the store records it when the form is sent). Signed, so that a bot must
/// fetch the page for each sign-up and wait a moment before sending it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FormToken {
    pub issued_at: chrono::DateTime<chrono::Utc>,
    pub nonce: [u8; 16],
}

/// Why a sign-up form's token was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormTokenProblem {
    /// No token, or one that we did not make.
    Missing,
    /// Sent sooner after the page was made than a person fills it in.
    TooSoon,
    /// Older than a day: the page was left open.
    Expired,
    /// This form was sent before.
    Used,
}

impl FormToken {
    const VERSION: u8 = 1;
    const BODY: usize = 1 + 4 + 8 + 16;
    /// How long a sign-up page's form stays good.
    pub const LIFETIME: chrono::TimeDelta = chrono::TimeDelta::days(1);

    pub fn new(issued_at: chrono::DateTime<chrono::Utc>) -> Self {
        Self {
            // The token carries milliseconds.
            issued_at: chrono::DateTime::from_timestamp_millis(issued_at.timestamp_millis())
                .unwrap_or(issued_at),
            nonce: random_bytes(),
        }
    }

    pub fn sign(&self, ring: &KeyRing) -> String {
        let key = ring.current();
        let mut token = vec![Self::VERSION];
        token.extend_from_slice(&key.id.0);
        token.extend_from_slice(&self.issued_at.timestamp_millis().to_be_bytes());
        token.extend_from_slice(&self.nonce);
        let tag = hmac::sign(&key.form, &token);
        token.extend_from_slice(tag.as_ref());
        URL_SAFE_NO_PAD.encode(token)
    }

    /// The token, if a key of the ring made it, checked against the clock: not sooner
    /// than `min_age` after it was made, nor more than a day later.
    pub fn check(
        ring: &KeyRing,
        text: Option<&str>,
        now: chrono::DateTime<chrono::Utc>,
        min_age: std::time::Duration,
    ) -> Result<Self, FormTokenProblem> {
        let token = text
            .and_then(|text| Self::verify(ring, text))
            .ok_or(FormTokenProblem::Missing)?;
        let age = now - token.issued_at;
        if age < chrono::TimeDelta::from_std(min_age).unwrap_or_default() {
            return Err(FormTokenProblem::TooSoon);
        }
        if age > Self::LIFETIME {
            return Err(FormTokenProblem::Expired);
        }
        Ok(token)
    }

    fn verify(ring: &KeyRing, text: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(text.trim()).ok()?;
        let (body, tag) = bytes.split_at_checked(Self::BODY)?;
        if body[0] != Self::VERSION {
            return None;
        }
        let key = ring.get(KeyId(body[1..5].try_into().ok()?))?;
        hmac::verify(&key.form, body, tag).ok()?;
        let millis = i64::from_be_bytes(body[5..13].try_into().ok()?);
        Some(Self {
            issued_at: chrono::DateTime::from_timestamp_millis(millis)?,
            nonce: body[13..29].try_into().ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_names_are_one_short_line() {
        assert_eq!(api_token_name("  ci deploy "), Some("ci deploy"));
        assert_eq!(
            api_token_name(&"é".repeat(100)),
            Some("é".repeat(100).as_str())
        );
        for bad in ["", "   ", "two\nlines", &"x".repeat(101)] {
            assert_eq!(api_token_name(bad), None, "{bad:?}");
        }
    }

    const A: &str = "a secret that is long enough for the test";
    const B: &str = "another secret, also long enough for it";

    fn random_token() -> ConfirmationToken {
        ConfirmationToken(random_bytes())
    }

    #[test]
    fn token_round_trips_through_its_text_form() {
        let token = random_token();
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
    fn hashes_differ_from_tokens() {
        let a = random_token();
        assert_ne!(a.hash().to_vec(), a.0.to_vec());
    }

    #[test]
    fn unsubscribe_tokens_verify_only_untouched_and_with_a_key_of_the_ring() {
        let ring = KeyRing::new(A, &[]);
        let token = UnsubscribeToken {
            subscriber_id: uuid::Uuid::now_v7(),
            list_id: uuid::Uuid::now_v7(),
            issue_id: Some(uuid::Uuid::now_v7()),
        };
        let text = token.sign(&ring);
        assert_eq!(UnsubscribeToken::verify(&ring, &text), Some(token));
        let no_issue = UnsubscribeToken {
            issue_id: None,
            ..token
        };
        assert_eq!(
            UnsubscribeToken::verify(&ring, &no_issue.sign(&ring)),
            Some(no_issue)
        );
        // Change one character anywhere and it no longer verifies.
        for i in [0, 3, 10, text.len() / 2, text.len() - 1] {
            let mut tampered = text.clone().into_bytes();
            tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(tampered).unwrap();
            assert_eq!(UnsubscribeToken::verify(&ring, &tampered), None, "{i}");
        }
        assert_eq!(UnsubscribeToken::verify(&KeyRing::new(B, &[]), &text), None);
        assert_eq!(UnsubscribeToken::verify(&ring, "garbage"), None);
        assert_eq!(UnsubscribeToken::verify(&ring, ""), None);
        // After a rotation the old key still verifies what it signed.
        let rotated = KeyRing::new(B, &[A.into()]);
        assert_eq!(UnsubscribeToken::verify(&rotated, &text), Some(token));
        assert_ne!(token.sign(&rotated), text);
    }

    #[test]
    fn manage_tokens_are_neither_unsubscribe_tokens_nor_changeable() {
        let ring = KeyRing::new(A, &[]);
        let token = ManageToken {
            subscriber_id: uuid::Uuid::now_v7(),
            list_id: uuid::Uuid::now_v7(),
            expires_at: chrono::DateTime::from_timestamp_millis(1_800_000_000_123).unwrap(),
        };
        let text = token.sign(&ring);
        assert_eq!(ManageToken::verify(&ring, &text), Some(token));
        assert_eq!(UnsubscribeToken::verify(&ring, &text), None);
        let unsubscribe = UnsubscribeToken {
            subscriber_id: token.subscriber_id,
            list_id: token.list_id,
            issue_id: None,
        };
        assert_eq!(ManageToken::verify(&ring, &unsubscribe.sign(&ring)), None);
        for i in [0, 3, 10, text.len() / 2, text.len() - 1] {
            let mut tampered = text.clone().into_bytes();
            tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(tampered).unwrap();
            assert_eq!(ManageToken::verify(&ring, &tampered), None, "{i}");
        }
        assert_eq!(ManageToken::verify(&KeyRing::new(B, &[]), &text), None);
        let rotated = KeyRing::new(B, &[A.into()]);
        assert_eq!(ManageToken::verify(&rotated, &text), Some(token));
    }

    #[test]
    fn version_one_links_from_before_key_rings_still_verify() {
        let token = UnsubscribeToken {
            subscriber_id: uuid::Uuid::now_v7(),
            list_id: uuid::Uuid::now_v7(),
            issue_id: None,
        };
        // As the earlier version signed them: version 1, the ids, and the tag.
        let mut body = vec![1u8];
        body.extend_from_slice(&token.ids());
        let tag = hmac::sign(&crate::keys::Key::new(A).unsubscribe, &body);
        body.extend_from_slice(tag.as_ref());
        let text = URL_SAFE_NO_PAD.encode(body);
        let rotated = KeyRing::new(B, &[A.into()]);
        assert_eq!(UnsubscribeToken::verify(&rotated, &text), Some(token));
        assert_eq!(UnsubscribeToken::verify(&KeyRing::new(B, &[]), &text), None);
    }

    #[test]
    fn form_tokens_are_refused_too_soon_too_late_or_forged() {
        let ring = KeyRing::new(A, &[]);
        let made = chrono::Utc::now();
        let token = FormToken::new(made);
        let text = token.sign(&ring);
        let two = std::time::Duration::from_secs(2);
        let at = |secs| made + chrono::TimeDelta::seconds(secs);
        assert_eq!(FormToken::check(&ring, Some(&text), at(3), two), Ok(token));
        assert_eq!(
            FormToken::check(&ring, Some(&text), at(1), two),
            Err(FormTokenProblem::TooSoon)
        );
        assert_eq!(
            FormToken::check(&ring, Some(&text), at(86_401), two),
            Err(FormTokenProblem::Expired)
        );
        assert_eq!(
            FormToken::check(&KeyRing::new(B, &[]), Some(&text), at(3), two),
            Err(FormTokenProblem::Missing)
        );
        assert_eq!(
            FormToken::check(&ring, None, at(3), two),
            Err(FormTokenProblem::Missing)
        );
        let mut tampered = text.into_bytes();
        tampered[10] = if tampered[10] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert_eq!(
            FormToken::check(&ring, Some(&tampered), at(3), two),
            Err(FormTokenProblem::Missing)
        );
        assert_ne!(FormToken::new(made).nonce, token.nonce);
    }

    #[test]
    fn debug_output_hides_secrets() {
        let token = random_token();
        assert!(!format!("{token:?}").contains(&token.encode()));
    }
}
