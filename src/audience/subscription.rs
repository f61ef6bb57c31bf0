//! A person's subscription to a list, and what each way in does to it. The rules are
//! here, in plain Rust; both stores find the facts (the subscription now, how many
//! confirmation mails went out lately), call these, and write what they decide.

use uuid::Uuid;

use crate::audience::budgets::BudgetScope;

/// Where a person stands with a list.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum SubscriptionStatus {
    /// Signed up (or invited), not confirmed yet: sent nothing but confirmation mails.
    Pending,
    Confirmed,
    Unsubscribed,
    /// Ended by a hard bounce (or enough soft ones): the address does not take mail.
    Bounced,
    /// Ended by the person reporting a mail as spam.
    Complained,
}

impl SubscriptionStatus {
    /// Every status, in the order staff see them counted.
    pub const ALL: [SubscriptionStatus; 5] = [
        SubscriptionStatus::Pending,
        SubscriptionStatus::Confirmed,
        SubscriptionStatus::Unsubscribed,
        SubscriptionStatus::Bounced,
        SubscriptionStatus::Complained,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionStatus::Pending => "pending",
            SubscriptionStatus::Confirmed => "confirmed",
            SubscriptionStatus::Unsubscribed => "unsubscribed",
            SubscriptionStatus::Bounced => "bounced",
            SubscriptionStatus::Complained => "complained",
        }
    }

    /// Whether the subscription has ended: by the person, a bounce or a complaint.
    pub fn has_ended(self) -> bool {
        matches!(
            self,
            SubscriptionStatus::Unsubscribed
                | SubscriptionStatus::Bounced
                | SubscriptionStatus::Complained
        )
    }

    pub fn parse(text: &str) -> anyhow::Result<Self> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| anyhow::anyhow!("Unknown subscription status {text:?}"))
    }
}

/// The event a confirmation records in the consent ledger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsentKind {
    Confirm,
    /// Confirmed again after unsubscribing (or bouncing, or complaining).
    Resubscribe,
}

impl ConsentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentKind::Confirm => "confirm",
            ConsentKind::Resubscribe => "resubscribe",
        }
    }
}

/// Confirmation mails for one address in 24 hours, at most (sign-ups and imports).
pub const RESEND_CAP: i64 = 3;

/// What a sign-up does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignupAction {
    /// Some chosen lists are not confirmed: a pending subscription to each that is new,
    /// a token and a consent event for each, and one confirmation mail for them all.
    Invite,
    /// Confirmed to every list chosen already: an "already subscribed" mail, within
    /// the day's cap.
    Remind,
    /// Nothing new to ask, and enough confirmation mails went out in the last 24 hours.
    Nothing,
}

/// A sign-up's plan: what it does, and the lists its confirmation mail asks about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignupPlan {
    pub action: SignupAction,
    /// The chosen lists the person is not confirmed on, in the order chosen.
    pub lists: Vec<Uuid>,
    /// Whether the details typed replace the ones kept: only for someone confirmed on
    /// no list, or anyone could change a subscriber's details by signing up as them.
    pub keep_details_typed: bool,
}

/// What a sign-up to `chosen` lists does, given the person's subscription to each
/// (`None`: never subscribed), whether they are confirmed on any list at all, and how
/// many confirmation mails they were sent in the last 24 hours. A list new to them is
/// always asked about (there are only so many lists); one they were asked about
/// before is asked again only within the cap.
pub fn signup_plan(
    chosen: &[(Uuid, Option<SubscriptionStatus>)],
    confirmed_anywhere: bool,
    recent_invitations: i64,
    resend_cap: i64,
) -> SignupPlan {
    let lists: Vec<Uuid> = chosen
        .iter()
        .filter(|(_, status)| *status != Some(SubscriptionStatus::Confirmed))
        .map(|(list, _)| *list)
        .collect();
    let any_new = chosen.iter().any(|(_, status)| status.is_none());
    let action = if lists.is_empty() {
        SignupAction::Remind
    } else if any_new || recent_invitations < resend_cap {
        SignupAction::Invite
    } else {
        SignupAction::Nothing
    };
    SignupPlan {
        keep_details_typed: action == SignupAction::Invite && !confirmed_anywhere,
        action,
        lists: if action == SignupAction::Invite {
            lists
        } else {
            Vec::new()
        },
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignupOutcome {
    /// A confirmation mail is in the outbox.
    ConfirmationQueued,
    /// Already confirmed: an "already subscribed" mail is in the outbox.
    ReminderQueued,
    /// Already confirmed, and reminded often enough in the last 24 hours: nothing sent.
    AlreadyConfirmed,
    /// Pending, but enough confirmation mails went out in the last 24 hours.
    ResendCapReached,
    /// The form's token was used before: nothing stored.
    FormTokenUsed,
    /// A budget on confirmation mails is spent: nothing stored or sent.
    OverBudget(BudgetScope),
    /// The address is on the suppression list, and had its mail this month: nothing
    /// stored or sent.
    Suppressed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfirmOutcome {
    Confirmed,
    /// The subscription was confirmed before (a second click, or another link).
    AlreadyConfirmed,
    /// The token was used and the subscription has since changed: links are single use.
    Used,
    Expired,
    Unknown,
}

/// What following a confirmation link does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Confirmation {
    pub outcome: ConfirmOutcome,
    /// The event to record when the subscription is confirmed now.
    pub event: Option<ConsentKind>,
    /// Whether the token is marked used: every answer but "expired" uses it up, once.
    pub uses_token: bool,
}

/// Decides a confirmation from the subscription the token is for, whether the token
/// was used before, and whether it has expired.
pub fn confirmation(status: SubscriptionStatus, token_used: bool, expired: bool) -> Confirmation {
    let (outcome, event) = match status {
        SubscriptionStatus::Confirmed => (ConfirmOutcome::AlreadyConfirmed, None),
        _ if token_used => (ConfirmOutcome::Used, None),
        _ if expired => (ConfirmOutcome::Expired, None),
        SubscriptionStatus::Unsubscribed
        | SubscriptionStatus::Bounced
        | SubscriptionStatus::Complained => {
            (ConfirmOutcome::Confirmed, Some(ConsentKind::Resubscribe))
        }
        SubscriptionStatus::Pending => (ConfirmOutcome::Confirmed, Some(ConsentKind::Confirm)),
    };
    Confirmation {
        outcome,
        event,
        uses_token: !token_used && outcome != ConfirmOutcome::Expired,
    }
}

/// What a link that confirms several lists comes to: confirmed if any list is
/// confirmed now; else the reason a list was not, before "already confirmed".
pub fn combined_outcome(outcomes: impl IntoIterator<Item = ConfirmOutcome>) -> ConfirmOutcome {
    let rank = |outcome: &ConfirmOutcome| match outcome {
        ConfirmOutcome::Confirmed => 0,
        ConfirmOutcome::Expired => 1,
        ConfirmOutcome::Used => 2,
        ConfirmOutcome::AlreadyConfirmed => 3,
        ConfirmOutcome::Unknown => 4,
    };
    outcomes
        .into_iter()
        .min_by_key(rank)
        .unwrap_or(ConfirmOutcome::Unknown)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnsubscribeOutcome {
    Unsubscribed,
    AlreadyUnsubscribed,
    /// No such subscription (the person's data may have been erased).
    NotSubscribed,
}

/// The domain of every erased address (`.invalid` is never delivered: RFC 2606).
const ERASED_DOMAIN: &str = "@erased.invalid";
/// A `LIKE` pattern that matches every address `erased_address` makes.
pub const ERASED_PATTERN: &str = "%@erased.invalid";

/// The address an erased subscriber's row keeps: unique, and deliverable nowhere.
pub fn erased_address(id: Uuid) -> String {
    format!("erased-{}{ERASED_DOMAIN}", id.simple())
}

/// Whether a subscriber's address is one `erased_address` made.
pub fn is_erased_address(email: &str) -> bool {
    email.ends_with(ERASED_DOMAIN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use SubscriptionStatus::*;

    #[test]
    fn the_erased_pattern_matches_erased_addresses() {
        assert_eq!(ERASED_PATTERN, format!("%{ERASED_DOMAIN}"));
    }

    #[test]
    fn statuses_round_trip() {
        for status in SubscriptionStatus::ALL {
            assert_eq!(SubscriptionStatus::parse(status.as_str()).unwrap(), status);
        }
        assert!(SubscriptionStatus::parse("lapsed").is_err());
    }

    #[test]
    fn a_sign_up_invites_reminds_or_waits() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let plan = |chosen: &[(Uuid, Option<SubscriptionStatus>)], anywhere, recent| {
            signup_plan(chosen, anywhere, recent, 3)
        };
        let new = plan(&[(a, None)], false, 0);
        assert_eq!(
            (new.action, new.lists.clone()),
            (SignupAction::Invite, vec![a])
        );
        assert!(new.keep_details_typed);
        assert_eq!(
            plan(&[(a, Some(Pending))], false, 2).action,
            SignupAction::Invite
        );
        assert_eq!(
            plan(&[(a, Some(Unsubscribed))], false, 0).action,
            SignupAction::Invite
        );
        assert_eq!(
            plan(&[(a, Some(Pending))], false, 3).action,
            SignupAction::Nothing
        );
        assert_eq!(
            plan(&[(a, Some(Unsubscribed))], false, 3).lists,
            Vec::<Uuid>::new()
        );
        // The reminder has a cap of its own, counted by the store.
        assert_eq!(
            plan(&[(a, Some(Confirmed))], true, 9).action,
            SignupAction::Remind
        );

        // Two lists, one confirmed: the other is asked about, and the details kept.
        let more = plan(&[(a, Some(Confirmed)), (b, None)], true, 3);
        assert_eq!(
            (more.action, more.lists.clone()),
            (SignupAction::Invite, vec![b])
        );
        assert!(
            !more.keep_details_typed,
            "a confirmed person's details stay"
        );
        let both = plan(&[(a, Some(Pending)), (b, None)], false, 0);
        assert_eq!(both.lists, vec![a, b]);
    }

    #[test]
    fn a_link_for_several_lists_says_the_most_useful_thing() {
        use ConfirmOutcome::*;
        assert_eq!(combined_outcome([AlreadyConfirmed, Confirmed]), Confirmed);
        assert_eq!(combined_outcome([AlreadyConfirmed, Expired]), Expired);
        assert_eq!(combined_outcome([Used, AlreadyConfirmed]), Used);
        assert_eq!(combined_outcome([AlreadyConfirmed]), AlreadyConfirmed);
        assert_eq!(combined_outcome([]), Unknown);
    }

    #[test]
    fn a_confirmation_confirms_once_and_says_why_not_otherwise() {
        let now = confirmation(Pending, false, false);
        assert_eq!(now.outcome, ConfirmOutcome::Confirmed);
        assert_eq!(now.event, Some(ConsentKind::Confirm));
        assert!(now.uses_token);
        let back = confirmation(Unsubscribed, false, false);
        assert_eq!(back.event, Some(ConsentKind::Resubscribe));

        let again = confirmation(Confirmed, true, true);
        assert_eq!(again.outcome, ConfirmOutcome::AlreadyConfirmed);
        assert!(!again.uses_token, "a used token is not used again");
        assert!(confirmation(Confirmed, false, false).uses_token);
        assert_eq!(
            confirmation(Unsubscribed, true, false).outcome,
            ConfirmOutcome::Used
        );
        let late = confirmation(Pending, false, true);
        assert_eq!(late.outcome, ConfirmOutcome::Expired);
        assert_eq!(late.event, None);
        assert!(!late.uses_token, "an expired token is left as it was");
    }

    #[test]
    fn erased_addresses_are_unique_and_undeliverable() {
        let id = Uuid::now_v7();
        assert!(erased_address(id).ends_with("@erased.invalid"));
        assert!(is_erased_address(&erased_address(id)));
        assert!(!is_erased_address("jo@example.org"));
        assert_ne!(erased_address(id), erased_address(Uuid::now_v7()));
    }
}
