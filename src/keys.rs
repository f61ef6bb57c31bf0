//! The server's secret keys: a ring in which the current key signs and previous keys
//! still verify, so that rotating a key never breaks a link already in someone's inbox.
//!
//! Every key gets a short id (a keyed hash of it, not the key), and what a key makes
//! names it: unsubscribe links carry the id, queued confirmation mails record it. A
//! key is never stored in the database; `secrets::load` settles where it lives (the
//! environment or a key file) and moves out a key that an earlier version kept there.

use std::{fmt, sync::Arc};

use anyhow::{Context, anyhow, bail};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ring::{aead, hmac};

use crate::tokens::{ConfirmationToken, random_bytes};

/// The shortest secret accepted, in characters.
pub const MIN_KEY_LEN: usize = 32;

/// A key's name: the first four bytes of a keyed hash of it, shown as hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId(pub [u8; 4]);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

impl KeyId {
    pub fn parse(text: &str) -> Option<Self> {
        if text.len() != 8 {
            return None;
        }
        let mut id = [0u8; 4];
        for (i, byte) in id.iter_mut().enumerate() {
            *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(Self(id))
    }
}

/// One secret and the purpose-bound keys derived from it.
pub struct Key {
    pub id: KeyId,
    pub(crate) unsubscribe: hmac::Key,
    pub(crate) form: hmac::Key,
    /// Signs the short-lived links that let a person download or erase their data.
    pub(crate) manage: hmac::Key,
    confirmation: hmac::Key,
    csrf: hmac::Key,
    /// Signs the reference a copy's return address carries.
    return_path: hmac::Key,
    /// Hashes an address for the suppression list.
    address: hmac::Key,
    /// Opens confirmation tokens that earlier versions sealed into outbox rows.
    legacy_seal: aead::LessSafeKey,
    /// Seals staff members' two-factor secrets in the database.
    two_factor: aead::LessSafeKey,
    /// Hashes staff members' recovery codes.
    recovery: hmac::Key,
}

impl Key {
    pub fn new(secret: &str) -> Self {
        let derive = |purpose: &[u8]| -> [u8; 32] {
            let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
            hmac::sign(&key, purpose)
                .as_ref()
                .try_into()
                .expect("HMAC-SHA256 is 32 bytes")
        };
        let hmac_key = |purpose: &[u8]| hmac::Key::new(hmac::HMAC_SHA256, &derive(purpose));
        let id = derive(b"newsletter key id v1");
        let seal = aead::UnboundKey::new(
            &aead::CHACHA20_POLY1305,
            &derive(b"newsletter outbox seal v1"),
        )
        .expect("a 32-byte ChaCha20-Poly1305 key");
        let two_factor = aead::UnboundKey::new(
            &aead::CHACHA20_POLY1305,
            &derive(b"newsletter two-factor seal v1"),
        )
        .expect("a 32-byte ChaCha20-Poly1305 key");
        Self {
            id: KeyId(id[..4].try_into().expect("four bytes")),
            unsubscribe: hmac_key(b"newsletter unsubscribe v1"),
            form: hmac_key(b"newsletter signup form v1"),
            manage: hmac_key(b"newsletter manage v1"),
            confirmation: hmac_key(b"newsletter confirmation v1"),
            csrf: hmac_key(b"newsletter csrf v1"),
            return_path: hmac_key(b"newsletter return path v1"),
            address: hmac_key(b"newsletter suppressed address v1"),
            legacy_seal: aead::LessSafeKey::new(seal),
            two_factor: aead::LessSafeKey::new(two_factor),
            recovery: hmac_key(b"newsletter recovery code v1"),
        }
    }

    /// The confirmation token of the mail `mail_id`: derived, never stored, so the
    /// database (which keeps only the token's hash) cannot give it back.
    pub fn confirmation_token(&self, mail_id: &[u8]) -> ConfirmationToken {
        let tag = hmac::sign(&self.confirmation, mail_id);
        ConfirmationToken::from_bytes(&tag.as_ref()[..32]).expect("32 bytes")
    }
}

/// The keys in use: the first signs, all verify. Cheap to clone.
#[derive(Clone)]
pub struct KeyRing {
    keys: Arc<Vec<Key>>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<KeyId> = self.keys.iter().map(|k| k.id).collect();
        write!(f, "KeyRing({ids:?})")
    }
}

impl KeyRing {
    /// `current` signs; `previous` only verify. Repeated keys count once.
    pub fn new(current: &str, previous: &[String]) -> Self {
        let mut keys = vec![Key::new(current)];
        for secret in previous {
            let key = Key::new(secret);
            if !keys.iter().any(|k| k.id == key.id) {
                keys.push(key);
            }
        }
        Self {
            keys: Arc::new(keys),
        }
    }

    /// A fresh secret for a new installation: 256 bits, base64url.
    pub fn generate_text() -> String {
        URL_SAFE_NO_PAD.encode(random_bytes::<32>())
    }

    pub fn current(&self) -> &Key {
        &self.keys[0]
    }

    pub fn get(&self, id: KeyId) -> Option<&Key> {
        self.keys.iter().find(|k| k.id == id)
    }

    pub fn keys(&self) -> impl Iterator<Item = &Key> {
        self.keys.iter()
    }

    /// The CSRF token that goes with a session (or a sign-in form's nonce): forms
    /// carry it, and only someone who can read the page can copy it.
    pub fn csrf_token(&self, session: &str) -> String {
        URL_SAFE_NO_PAD.encode(hmac::sign(&self.current().csrf, session.as_bytes()))
    }

    /// Whether `token` is the CSRF token for `session` under any key (in constant time).
    pub fn csrf_valid(&self, session: &str, token: &str) -> bool {
        URL_SAFE_NO_PAD.decode(token).is_ok_and(|tag| {
            self.keys()
                .any(|k| hmac::verify(&k.csrf, session.as_bytes(), &tag).is_ok())
        })
    }

    /// The short tag a return address carries after its reference: the first `len`
    /// bytes of its HMAC under the current key.
    pub fn return_path_tag(&self, reference: &[u8], len: usize) -> Vec<u8> {
        hmac::sign(&self.current().return_path, reference).as_ref()[..len].to_vec()
    }

    /// Whether `tag` is the tag of `reference` under any key of the ring.
    pub fn return_path_valid(&self, reference: &[u8], tag: &[u8]) -> bool {
        self.keys().any(|key| {
            let expected = hmac::sign(&key.return_path, reference);
            let expected = &expected.as_ref()[..tag.len().min(32)];
            // Constant time: every byte is compared.
            tag.len() == expected.len()
                && expected.iter().zip(tag).fold(0, |d, (a, b)| d | (a ^ b)) == 0
        })
    }

    /// The keyed hashes of an address (compared as `mailbox_key` compares), under each key of the
    /// ring, the current key's first: the suppression list keeps the first, and finds
    /// an entry by any of them, so that rotating the key keeps every entry in force
    /// while the old key stays in the ring.
    pub fn address_keys(&self, address: &str) -> Vec<[u8; 32]> {
        let address = address.trim().to_ascii_lowercase();
        self.keys()
            .map(|key| {
                hmac::sign(&key.address, address.as_bytes())
                    .as_ref()
                    .try_into()
                    .expect("HMAC-SHA256 is 32 bytes")
            })
            .collect()
    }

    /// A staff member's two-factor secret sealed for the database, bound to their id:
    /// the key's id, a random nonce, then the sealed secret. A copy of the database
    /// without the secret key makes no codes.
    pub fn seal_two_factor(&self, secret: &[u8], user_id: &[u8]) -> Vec<u8> {
        let key = self.current();
        let nonce = crate::tokens::random_bytes::<{ aead::NONCE_LEN }>();
        let mut sealed = secret.to_vec();
        key.two_factor
            .seal_in_place_append_tag(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(user_id),
                &mut sealed,
            )
            .expect("sealing a short secret works");
        [&key.id.0[..], &nonce[..], &sealed[..]].concat()
    }

    /// The secret `seal_two_factor` sealed for `user_id`.
    pub fn open_two_factor(&self, sealed: &[u8], user_id: &[u8]) -> anyhow::Result<Vec<u8>> {
        let (id, rest) = sealed
            .split_at_checked(4)
            .context("A sealed two-factor secret is too short")?;
        let key = self
            .get(KeyId(id.try_into().expect("four bytes")))
            .context("The key that sealed this two-factor secret is no longer configured")?;
        let (nonce, ciphertext) = rest
            .split_at_checked(aead::NONCE_LEN)
            .context("A sealed two-factor secret is too short")?;
        let nonce = aead::Nonce::try_assume_unique_for_key(nonce)
            .map_err(|_| anyhow!("A sealed two-factor secret has a bad nonce"))?;
        let mut buffer = ciphertext.to_vec();
        let plain = key
            .two_factor
            .open_in_place(nonce, aead::Aad::from(user_id), &mut buffer)
            .map_err(|_| anyhow!("A two-factor secret does not open"))?;
        Ok(plain.to_vec())
    }

    /// The keyed hashes of a recovery code (normalised) under each key, the current
    /// key's first: kept as the first, found by any.
    pub fn recovery_code_hashes(&self, code: &str) -> Vec<[u8; 32]> {
        self.keys()
            .map(|key| {
                hmac::sign(&key.recovery, code.as_bytes())
                    .as_ref()
                    .try_into()
                    .expect("HMAC-SHA256 is 32 bytes")
            })
            .collect()
    }

    /// Opens a token that an earlier version sealed into the outbox row `row_id`.
    pub fn open_legacy(&self, sealed: &[u8], row_id: &[u8]) -> anyhow::Result<ConfirmationToken> {
        let (nonce, ciphertext) = sealed
            .split_at_checked(aead::NONCE_LEN)
            .context("A sealed token is too short")?;
        for key in self.keys() {
            let nonce = aead::Nonce::try_assume_unique_for_key(nonce)
                .map_err(|_| anyhow!("A sealed token has a bad nonce"))?;
            let mut buffer = ciphertext.to_vec();
            if let Ok(plain) =
                key.legacy_seal
                    .open_in_place(nonce, aead::Aad::from(row_id), &mut buffer)
            {
                return ConfirmationToken::from_bytes(plain)
                    .context("A sealed token has the wrong length");
            }
        }
        bail!("A sealed token opens with none of the configured keys")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "a secret that is long enough for the test";
    const B: &str = "another secret, also long enough for it";

    #[test]
    fn key_ids_are_stable_distinct_and_round_trip() {
        assert_eq!(Key::new(A).id, Key::new(A).id);
        assert_ne!(Key::new(A).id, Key::new(B).id);
        let id = Key::new(A).id;
        assert_eq!(KeyId::parse(&id.to_string()), Some(id));
        assert_eq!(KeyId::parse("xyz"), None);
        assert!(!id.to_string().contains(A));
    }

    #[test]
    fn the_ring_signs_with_the_first_and_verifies_with_all() {
        let ring = KeyRing::new(B, &[A.into(), B.into()]);
        assert_eq!(ring.keys().count(), 2);
        assert_eq!(ring.current().id, Key::new(B).id);
        let old = KeyRing::new(A, &[]);
        let token = old.csrf_token("session");
        assert!(ring.csrf_valid("session", &token));
        assert!(!KeyRing::new(B, &[]).csrf_valid("session", &token));
    }

    #[test]
    fn confirmation_tokens_depend_on_the_key_and_the_mail() {
        let (a, b) = (Key::new(A), Key::new(B));
        assert_eq!(a.confirmation_token(b"m1"), a.confirmation_token(b"m1"));
        assert_ne!(a.confirmation_token(b"m1"), a.confirmation_token(b"m2"));
        assert_ne!(a.confirmation_token(b"m1"), b.confirmation_token(b"m1"));
    }

    #[test]
    fn tokens_sealed_by_the_earlier_version_still_open() {
        // As the earlier version sealed them: a random nonce, then the ciphertext.
        let token = Key::new(B).confirmation_token(b"any 32 bytes");
        let nonce = random_bytes::<{ aead::NONCE_LEN }>();
        let mut sealed = URL_SAFE_NO_PAD.decode(token.encode()).unwrap();
        Key::new(A)
            .legacy_seal
            .seal_in_place_append_tag(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(b"row-1"),
                &mut sealed,
            )
            .unwrap();
        let row = [nonce.to_vec(), sealed].concat();
        let ring = KeyRing::new(B, &[A.into()]);
        assert_eq!(ring.open_legacy(&row, b"row-1").unwrap(), token);
        assert!(ring.open_legacy(&row, b"row-2").is_err());
        assert!(KeyRing::new(B, &[]).open_legacy(&row, b"row-1").is_err());
        assert!(ring.open_legacy(&row[..5], b"row-1").is_err());
    }
}
