//! What a person's choices on their preference page do to their subscriptions: a box
//! they tick is joined, one they untick is left. Only the boxes changed from what the
//! page showed count, so a page left open in another tab undoes nothing done since.
//! The page is reached only through a link that went to their mailbox, so joining
//! needs no second confirmation; a list the mail world ended (a bounce, a spam
//! report) is not joined from it: signing up again, confirmed by mail, is the way.

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
/// page offered, those it showed ticked, and those ticked now (only offered lists
/// count).
pub fn list_changes(
    current: &[(Uuid, SubscriptionStatus)],
    offered: &[Uuid],
    shown: &[Uuid],
    ticked: &[Uuid],
) -> ListChanges {
    use SubscriptionStatus::*;
    let mut changes = ListChanges::default();
    for list in offered {
        let status = current.iter().find(|(l, _)| l == list).map(|(_, s)| *s);
        let wanted = ticked.contains(list);
        if wanted == shown.contains(list) {
            continue;
        }
        match (status, wanted) {
            (Some(Confirmed | Bounced | Complained), true) => {}
            (None | Some(Pending), true) => changes.join.push((*list, ConsentKind::Confirm)),
            (Some(Unsubscribed), true) => changes.join.push((*list, ConsentKind::Resubscribe)),
            (Some(Confirmed | Pending), false) => changes.leave.push(*list),
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
        let [a, b, c, d, e, f] = [(); 6].map(|_| Uuid::now_v7());
        let current = [
            (a, Confirmed),
            (b, Unsubscribed),
            (c, Pending),
            (d, Bounced),
            (f, Complained),
        ];
        let all = [a, b, c, d, e, f];
        let changes = list_changes(&current, &all, &[a], &[b, c, d, e, f]);
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
        let changes = list_changes(&current, &[b], &[], &[a]);
        assert_eq!(changes, ListChanges::default());
    }

    #[test]
    fn only_boxes_changed_since_the_page_was_shown_count() {
        let [a, b] = [(); 2].map(|_| Uuid::now_v7());
        // Shown with both ticked; they left `b` in another tab since. Saving the old
        // page with both still ticked joins nothing.
        let current = [(a, Confirmed), (b, Unsubscribed)];
        let changes = list_changes(&current, &[a, b], &[a, b], &[a, b]);
        assert_eq!(changes, ListChanges::default());
        // Shown with neither ticked; they joined `a` elsewhere. Unticked still: kept.
        let changes = list_changes(&current, &[a, b], &[], &[]);
        assert_eq!(changes, ListChanges::default());
    }
}
