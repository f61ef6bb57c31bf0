//! The kinds of single mail the outbox sends, and what each row's payload holds: never
//! a secret (a confirmation's token is derived again from the key and the mail's id).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    keys::KeyRing,
    store::{DEFAULT_LIST, Invitation, MailingList, NewOutboxMail},
};

pub const CONFIRMATION: &str = "confirmation";
pub const WELCOME: &str = "welcome";
/// To someone already subscribed who signs up again: nothing to confirm, and the way out.
pub const ALREADY_SUBSCRIBED: &str = "already_subscribed";
pub const ISSUE_TEST: &str = "issue_test";
/// The link to a person's preference page, which they asked for by address.
pub const PREFERENCES_LINK: &str = "preferences_link";
/// An invitation to become staff: the link where they choose their password.
pub const STAFF_INVITE: &str = "staff_invite";
/// A staff member's password reset link.
pub const STAFF_RESET: &str = "staff_reset";

/// The lists a mail is about, as it names them: the newsletter itself (the first list,
/// named as the brand names it when the mail goes) and any others by their names.
/// Rows queued before there were lists name only the newsletter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListNames {
    #[serde(default = "the_newsletter")]
    pub newsletter: bool,
    #[serde(default)]
    pub others: Vec<String>,
}

fn the_newsletter() -> bool {
    true
}

impl ListNames {
    pub fn of(lists: &[MailingList]) -> Self {
        ListNames {
            newsletter: lists.iter().any(|l| l.slug == DEFAULT_LIST),
            others: lists
                .iter()
                .filter(|l| l.slug != DEFAULT_LIST)
                .map(|l| l.name.clone())
                .collect(),
        }
    }

    /// "In Partnership", "In Partnership and Stroud News", "A, B and C".
    pub fn words(&self, newsletter_name: &str) -> String {
        let mut names: Vec<&str> = Vec::new();
        if self.newsletter {
            names.push(newsletter_name);
        }
        names.extend(self.others.iter().map(String::as_str));
        if names.is_empty() {
            return newsletter_name.to_owned();
        }
        and_joined(&names)
    }
}

/// "A", "A and B", "A, B and C".
pub fn and_joined(names: &[&str]) -> String {
    match names.split_last() {
        None => String::new(),
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

/// What a confirmation mail's templates need, besides the token.
#[derive(Serialize, Deserialize)]
pub struct ConfirmationPayload {
    #[serde(flatten)]
    pub lists: ListNames,
    /// When the link stops working, already written for people (UK time).
    pub expires: String,
    /// Staff imported them and invite them; they did not ask themselves.
    #[serde(default)]
    pub invited: bool,
    /// The key the token is derived from (with the mail's id). Mails queued by an
    /// earlier version have none: their token is sealed into the row instead.
    #[serde(default)]
    pub key_id: Option<String>,
}

impl Invitation {
    /// A confirmation mail to `recipient` for the `lists`, with a new token
    /// that works for `ttl`; only the token's hash is kept, and the worker derives the
    /// token again from the key and the mail's id. `invited` when staff imported them,
    /// rather than their asking.
    pub fn new(
        keys: &KeyRing,
        lists: ListNames,
        ttl: Duration,
        recipient: &str,
        now: DateTime<Utc>,
        invited: bool,
    ) -> anyhow::Result<Self> {
        let token_expires_at = now + chrono::Duration::from_std(ttl)?;
        let id = Uuid::now_v7();
        let key = keys.current();
        let token = key.confirmation_token(id.as_bytes());
        let payload = ConfirmationPayload {
            lists,
            expires: crate::time::uk_date_time(token_expires_at),
            invited,
            key_id: Some(key.id.to_string()),
        };
        Ok(Self {
            token_hash: token.hash(),
            token_expires_at,
            mail: NewOutboxMail {
                id,
                kind: CONFIRMATION.into(),
                recipient: recipient.to_owned(),
                payload: serde_json::to_string(&payload)?,
            },
        })
    }
}

/// What a welcome or already-subscribed mail needs: the list, to name it and to sign
/// the unsubscribe link.
#[derive(Serialize, Deserialize)]
pub struct WelcomePayload {
    #[serde(flatten)]
    pub lists: ListNames,
    /// The list its unsubscribe link leaves.
    pub list_id: Uuid,
}

/// The mail with a person's preference link, queued by the store only if the address
/// is a subscriber's. Its link names `list` (the newsletter).
pub fn preferences_link(list: &MailingList) -> anyhow::Result<NewOutboxMail> {
    Ok(NewOutboxMail {
        id: Uuid::now_v7(),
        kind: PREFERENCES_LINK.into(),
        recipient: String::new(),
        payload: serde_json::to_string(&WelcomePayload {
            lists: ListNames::of(std::slice::from_ref(list)),
            list_id: list.id,
        })?,
    })
}

/// The already-subscribed mail for a sign-up, queued by the store only if the person is
/// subscribed already (and not reminded too often).
pub fn already_subscribed(
    list: &crate::store::MailingList,
    recipient: &str,
) -> anyhow::Result<NewOutboxMail> {
    Ok(NewOutboxMail {
        id: Uuid::now_v7(),
        kind: ALREADY_SUBSCRIBED.into(),
        recipient: recipient.to_owned(),
        payload: serde_json::to_string(&WelcomePayload {
            lists: ListNames::of(std::slice::from_ref(list)),
            list_id: list.id,
        })?,
    })
}

/// A staff invitation or reset mail: its link's token is derived again from the key
/// and the mail's id, as a confirmation's is, so the row holds nothing secret.
#[derive(Serialize, Deserialize)]
pub struct StaffLinkPayload {
    pub key_id: String,
    /// An invitation's role ("admin" or "editor").
    pub role: Option<String>,
    /// When the link stops working, already written for people (UK time).
    pub expires: String,
}

/// A staff link's mail (`STAFF_INVITE` or `STAFF_RESET`), and the hash of its token,
/// which is the one thing the store keeps of it.
pub fn staff_link_mail(
    keys: &KeyRing,
    kind: &str,
    role: Option<&str>,
    expires_at: DateTime<Utc>,
) -> anyhow::Result<(NewOutboxMail, [u8; 32])> {
    let id = Uuid::now_v7();
    let key = keys.current();
    let token = key.confirmation_token(id.as_bytes());
    let payload = StaffLinkPayload {
        key_id: key.id.to_string(),
        role: role.map(str::to_owned),
        expires: crate::time::uk_date_time(expires_at),
    };
    let mail = NewOutboxMail {
        id,
        kind: kind.into(),
        recipient: String::new(),
        payload: serde_json::to_string(&payload)?,
    };
    Ok((mail, token.hash()))
}

/// A test copy of an issue, composed from its content when it is sent.
#[derive(Serialize, Deserialize)]
pub struct IssueTestPayload {
    pub issue_id: Uuid,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_named_with_the_newsletter_first() {
        let only = ListNames {
            newsletter: true,
            others: vec![],
        };
        assert_eq!(only.words("In Partnership"), "In Partnership");
        let two = ListNames {
            newsletter: true,
            others: vec!["Stroud News".into()],
        };
        assert_eq!(
            two.words("In Partnership"),
            "In Partnership and Stroud News"
        );
        let three = ListNames {
            newsletter: false,
            others: vec!["A".into(), "B".into(), "C".into()],
        };
        assert_eq!(three.words("In Partnership"), "A, B and C");
        // A row queued before lists: the newsletter.
        let old: ConfirmationPayload =
            serde_json::from_str(r#"{"list_name": "In Partnership", "expires": "x"}"#).unwrap();
        assert_eq!(old.lists, only);
    }
}
