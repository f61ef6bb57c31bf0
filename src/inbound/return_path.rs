//! The return address of each copy (VERP): `bounces+<ref>@domain`, where `<ref>` names
//! the copy (an issue's delivery to one subscriber, or one outbox mail) and ends in a
//! short MAC, so that a bounce is put down to the copy it is about and nobody can make
//! one that names another. The reference is lower-case base32, because mail systems
//! may change the case of a local part, and the whole local part stays well within the
//! 64 characters SMTP allows.
//!
//! An issue's `List-Unsubscribe` names a second address of the same kind,
//! `bounces+u-<ref>@domain`: a mail to it asks to unsubscribe that copy's recipient.

use uuid::Uuid;

use crate::keys::KeyRing;

/// The MAC's length, in bytes: 40 bits, for a reference that names one copy.
const TAG: usize = 5;

/// The copy a bounce is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum CopyRef {
    /// An issue (by number) to one subscriber.
    Delivery {
        issue_number: u32,
        subscriber_id: Uuid,
    },
    /// One mail of the outbox: a confirmation, a welcome, a test copy.
    Outbox { id: Uuid },
}

impl CopyRef {
    fn bytes(&self) -> Vec<u8> {
        match self {
            CopyRef::Delivery {
                issue_number,
                subscriber_id,
            } => {
                let mut bytes = vec![b'd'];
                bytes.extend_from_slice(&issue_number.to_be_bytes());
                bytes.extend_from_slice(subscriber_id.as_bytes());
                bytes
            }
            CopyRef::Outbox { id } => {
                let mut bytes = vec![b'o'];
                bytes.extend_from_slice(id.as_bytes());
                bytes
            }
        }
    }

    /// The reference as the return address carries it: its kind's letter, then the
    /// ids and the tag in base32.
    pub fn encode(&self, ring: &KeyRing) -> String {
        let bytes = self.bytes();
        let mut body = bytes[1..].to_vec();
        body.extend(ring.return_path_tag(&bytes, TAG));
        format!("{}{}", bytes[0] as char, base32(&body))
    }

    /// The copy a reference names, if a key of the ring made it.
    pub fn decode(text: &str, ring: &KeyRing) -> Option<Self> {
        let text = text.to_ascii_lowercase();
        let (kind, body) = text.split_at_checked(1)?;
        let body = unbase32(body)?;
        let (ids, tag) = body.split_at_checked(body.len().checked_sub(TAG)?)?;
        let reference = match (kind, ids.len()) {
            ("d", 20) => CopyRef::Delivery {
                issue_number: u32::from_be_bytes(ids[..4].try_into().ok()?),
                subscriber_id: Uuid::from_slice(&ids[4..]).ok()?,
            },
            ("o", 16) => CopyRef::Outbox {
                id: Uuid::from_slice(ids).ok()?,
            },
            _ => return None,
        };
        ring.return_path_valid(&reference.bytes(), tag)
            .then_some(reference)
    }

    /// This copy's addresses at the bounce mailbox, from one reference (one MAC):
    /// `bounces@news.example.org` gives `bounces+<ref>@news.example.org` and
    /// `bounces+u-<ref>@news.example.org`.
    pub fn addresses(&self, bounce_address: &str, ring: &KeyRing) -> Option<ReturnAddresses> {
        let (local, domain) = bounce_address.rsplit_once('@')?;
        let reference = self.encode(ring);
        Some(ReturnAddresses {
            return_path: format!("{local}+{reference}@{domain}"),
            unsubscribe: format!("{local}+{UNSUBSCRIBE}{reference}@{domain}"),
            reference,
        })
    }
}

impl CopyRef {
    /// The copy a Message-ID names, if it is one of ours (`<ref.random@domain>`): for a
    /// bounce that quotes the copy but lost its return address.
    pub fn from_message_id(message_id: &str, ring: &KeyRing) -> Option<Self> {
        let id = message_id.trim().trim_start_matches('<');
        let (reference, _) = id.split_once('.')?;
        Self::decode(reference, ring)
    }
}

/// A copy's own addresses at the bounce mailbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReturnAddresses {
    /// The reference both carry; the copy's Message-ID starts with it too.
    pub reference: String,
    /// The envelope's sender: where bounces of this copy go.
    pub return_path: String,
    /// Where a mail client writes when its reader asks to leave by mail
    /// (`List-Unsubscribe`'s `mailto:`).
    pub unsubscribe: String,
}

/// What starts the reference of an unsubscribe address.
const UNSUBSCRIBE: &str = "u-";

/// What a mail that reached the bounce mailbox is, by the address it came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Returned {
    /// It came back to this copy's return address: a bounce, a complaint, a reply.
    Bounce(CopyRef),
    /// It was sent to this copy's unsubscribe address.
    Unsubscribe(CopyRef),
}

impl Returned {
    /// The copy an address names, if it is one of ours: the mailbox's local part, `+`,
    /// a reference (after `u-` for an unsubscribe address), the mailbox's domain; any
    /// case.
    pub fn from_address(address: &str, bounce_address: &str, ring: &KeyRing) -> Option<Self> {
        let (local, domain) = address.trim().rsplit_once('@')?;
        let (mailbox, mailbox_domain) = bounce_address.rsplit_once('@')?;
        if !domain.eq_ignore_ascii_case(mailbox_domain) {
            return None;
        }
        let (base, reference) = local.split_once('+')?;
        if !base.eq_ignore_ascii_case(mailbox) {
            return None;
        }
        let reference = reference.to_ascii_lowercase();
        match reference.strip_prefix(UNSUBSCRIBE) {
            Some(reference) => CopyRef::decode(reference, ring).map(Returned::Unsubscribe),
            None => CopyRef::decode(&reference, ring).map(Returned::Bounce),
        }
    }
}

const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// RFC 4648 base32, lower-case, without padding.
fn base32(bytes: &[u8]) -> String {
    let mut out = String::new();
    let (mut buffer, mut bits) = (0u32, 0);
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

fn unbase32(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut buffer, mut bits) = (0u32, 0);
    for c in text.bytes() {
        let value = ALPHABET.iter().position(|&a| a == c)? as u32;
        buffer = (buffer << 5) | value;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
        buffer &= (1 << bits) - 1;
    }
    // Only the canonical form: the bits left over are zero.
    (buffer == 0).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(secret: &str) -> KeyRing {
        KeyRing::new(secret, &[])
    }

    #[test]
    fn a_return_address_names_its_copy_and_cannot_be_forged() {
        let ring = ring("a secret that is long enough for the test");
        let copies = [
            CopyRef::Delivery {
                issue_number: 7,
                subscriber_id: Uuid::now_v7(),
            },
            CopyRef::Outbox { id: Uuid::now_v7() },
        ];
        for copy in copies {
            let addresses = copy
                .addresses("newsletter-bounces@news.example.org", &ring)
                .unwrap();
            let address = addresses.return_path.clone();
            let local = address.split('@').next().unwrap();
            assert!(local.len() <= 64, "{address}");
            let mailbox = "newsletter-bounces@news.example.org";
            assert_eq!(
                Returned::from_address(&address.to_uppercase(), mailbox, &ring),
                Some(Returned::Bounce(copy)),
                "any case"
            );
            let leave = addresses.unsubscribe;
            assert!(leave.split('@').next().unwrap().len() <= 64, "{leave}");
            assert_eq!(
                Returned::from_address(&leave, mailbox, &ring),
                Some(Returned::Unsubscribe(copy))
            );
            // Another key, a changed letter, another mailbox: nothing.
            let other = KeyRing::new("another secret, also long enough for it", &[]);
            assert_eq!(Returned::from_address(&address, mailbox, &other), None);
            let reference = copy.encode(&ring);
            let mut forged = reference.clone().into_bytes();
            forged[3] = if forged[3] == b'a' { b'b' } else { b'a' };
            assert_eq!(
                CopyRef::decode(std::str::from_utf8(&forged).unwrap(), &ring),
                None
            );
            assert_eq!(
                Returned::from_address(&address, "other@news.example.org", &ring),
                None
            );
        }
    }

    #[test]
    fn a_message_id_names_its_copy() {
        let ring = ring("a secret that is long enough for the test");
        let copy = CopyRef::Outbox { id: Uuid::now_v7() };
        let id = format!("<{}.0123456789abcdef@news.example.org>", copy.encode(&ring));
        assert_eq!(CopyRef::from_message_id(&id, &ring), Some(copy));
        assert_eq!(
            CopyRef::from_message_id("<0193.1a2b@elsewhere.example>", &ring),
            None
        );
    }

    #[test]
    fn a_previous_key_still_reads_its_addresses() {
        let old = ring("the key that signed last quarter's mail");
        let copy = CopyRef::Outbox { id: Uuid::now_v7() };
        let reference = copy.encode(&old);
        let rotated = KeyRing::new(
            "this quarter's key, long enough as well",
            &["the key that signed last quarter's mail".to_owned()],
        );
        assert_eq!(CopyRef::decode(&reference, &rotated), Some(copy));
    }

    #[test]
    fn base32_round_trips() {
        for len in 0..30 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            assert_eq!(unbase32(&base32(&bytes)).unwrap(), bytes);
        }
        assert_eq!(base32(b"foobar"), "mzxw6ytboi");
    }
}
