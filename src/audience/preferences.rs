//! What a person's choices on their preference page do to their subscriptions: the
//! lists they tick that they are not on are joined, those they untick are left. The
//! page is reached only through a link that went to their mailbox, so joining needs
//! no second confirmation.

use uuid::Uuid;

use crate::audience::subscription::{ConsentKind, SubscriptionStatus};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListChanges {
    /// Lists to join, and the ledger event each records (`Resubscribe` for a list
    /// they had left).
    pub join: Vec<(Uuid, ConsentKind)>,
    pub leave: Vec<Uuid>,
}

/// The changes, given where they stand with each list (`current`), the lists the
/// page offered, and those ticked (only offered lists count).
pub fn list_changes(
    current: &[(Uuid, SubscriptionStatus)],
    offered: &[Uuid],
    ticked: &[Uuid],
) -> ListChanges {
    let mut changes = ListChanges::default();
    for list in offered {
        let status = current.iter().find(|(l, _)| l == list).map(|(_, s)| *s);
        let wanted = ticked.contains(list);
        match (status, wanted) {
            (Some(SubscriptionStatus::Confirmed), true) => {}
            (None | Some(SubscriptionStatus::Pending), true) => {
                changes.join.push((*list, ConsentKind::Confirm))
            }
            (Some(_), true) => changes.join.push((*list, ConsentKind::Resubscribe)),
            (Some(SubscriptionStatus::Confirmed | SubscriptionStatus::Pending), false) => {
                changes.leave.push(*list)
            }
            (_, false) => {}
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use SubscriptionStatus::*;

    #[test]
    fn ticks_join_and_unticks_leave() {
        let [a, b, c, d, e] = [(); 5].map(|_| Uuid::now_v7());
        let current = [
            (a, Confirmed),
            (b, Unsubscribed),
            (c, Pending),
            (d, Bounced),
        ];
        let changes = list_changes(&current, &[a, b, c, d, e], &[b, c, e]);
        assert_eq!(
            changes.join,
            vec![
                (b, ConsentKind::Resubscribe),
                (c, ConsentKind::Confirm),
                (e, ConsentKind::Confirm)
            ]
        );
        assert_eq!(changes.leave, vec![a]);
        // A list not offered is never changed, ticked or not.
        let changes = list_changes(&current, &[b], &[a]);
        assert_eq!(changes, ListChanges::default());
    }
}
