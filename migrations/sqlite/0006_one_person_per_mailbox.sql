-- One person per mailbox: addresses compare case-insensitively (`Jo@example.org` and
-- `JO@example.org` are one person), while `email` keeps the form they typed, for
-- sending. Existing case-duplicates merge into the oldest of them; the ledger keeps
-- every event (moved to the merged person), and where any of them unsubscribed, the
-- merged person stays unsubscribed.

ALTER TABLE subscribers ADD COLUMN email_key TEXT GENERATED ALWAYS AS (lower(email)) VIRTUAL;

-- Each duplicate and the subscriber it merges into.
CREATE TEMP TABLE mailbox_merges AS
SELECT s.id AS old_id,
       (SELECT k.id FROM subscribers k WHERE k.email_key = s.email_key
        ORDER BY k.created_at, k.id LIMIT 1) AS new_id
FROM subscribers s
WHERE EXISTS (SELECT 1 FROM subscribers d WHERE d.email_key = s.email_key AND d.id <> s.id);
DELETE FROM mailbox_merges WHERE old_id = new_id;

-- The merged person's subscription to each list, from whichever of them had one.
INSERT INTO subscriptions (subscriber_id, list_id, status, created_at, confirmed_at, unsubscribed_at, updated_at)
SELECT m.new_id, sub.list_id, sub.status, sub.created_at, sub.confirmed_at, sub.unsubscribed_at, sub.updated_at
FROM mailbox_merges m JOIN subscriptions sub ON sub.subscriber_id = m.old_id
WHERE true
ON CONFLICT (subscriber_id, list_id) DO NOTHING;

-- Unsubscribed if any of them unsubscribed, else confirmed if any confirmed.
CREATE TEMP TABLE merged_subscriptions AS
SELECT coalesce(m.new_id, sub.subscriber_id) AS subscriber_id, sub.list_id,
       max(sub.status = 'unsubscribed') AS any_unsubscribed,
       max(sub.status = 'confirmed') AS any_confirmed,
       min(sub.created_at) AS created_at,
       min(sub.confirmed_at) AS confirmed_at,
       max(sub.unsubscribed_at) AS unsubscribed_at,
       max(sub.updated_at) AS updated_at
FROM subscriptions sub LEFT JOIN mailbox_merges m ON m.old_id = sub.subscriber_id
WHERE sub.subscriber_id IN (SELECT old_id FROM mailbox_merges UNION SELECT new_id FROM mailbox_merges)
GROUP BY 1, 2;

UPDATE subscriptions SET
    status = (SELECT CASE WHEN any_unsubscribed THEN 'unsubscribed'
                          WHEN any_confirmed THEN 'confirmed' ELSE 'pending' END
              FROM merged_subscriptions g
              WHERE g.subscriber_id = subscriptions.subscriber_id AND g.list_id = subscriptions.list_id),
    created_at = (SELECT created_at FROM merged_subscriptions g
                  WHERE g.subscriber_id = subscriptions.subscriber_id AND g.list_id = subscriptions.list_id),
    confirmed_at = (SELECT confirmed_at FROM merged_subscriptions g
                    WHERE g.subscriber_id = subscriptions.subscriber_id AND g.list_id = subscriptions.list_id),
    unsubscribed_at = (SELECT CASE WHEN any_unsubscribed THEN unsubscribed_at END FROM merged_subscriptions g
                       WHERE g.subscriber_id = subscriptions.subscriber_id AND g.list_id = subscriptions.list_id),
    updated_at = (SELECT updated_at FROM merged_subscriptions g
                  WHERE g.subscriber_id = subscriptions.subscriber_id AND g.list_id = subscriptions.list_id)
WHERE subscriber_id IN (SELECT new_id FROM mailbox_merges);

-- Everything that named a duplicate now names the merged person.
UPDATE consent_events SET subscriber_id = (SELECT new_id FROM mailbox_merges WHERE old_id = subscriber_id)
WHERE subscriber_id IN (SELECT old_id FROM mailbox_merges);
UPDATE confirmation_tokens SET subscriber_id = (SELECT new_id FROM mailbox_merges WHERE old_id = subscriber_id)
WHERE subscriber_id IN (SELECT old_id FROM mailbox_merges);
UPDATE outbox SET subscriber_id = (SELECT new_id FROM mailbox_merges WHERE old_id = subscriber_id)
WHERE subscriber_id IN (SELECT old_id FROM mailbox_merges);
-- A copy of an issue still to go goes once; copies already sent stay as history.
UPDATE OR IGNORE deliveries SET subscriber_id = (SELECT new_id FROM mailbox_merges WHERE old_id = subscriber_id)
WHERE subscriber_id IN (SELECT old_id FROM mailbox_merges);
UPDATE deliveries SET status = 'skipped', lease_until = NULL
WHERE subscriber_id IN (SELECT old_id FROM mailbox_merges) AND status IN ('queued', 'sending');

DELETE FROM subscriptions WHERE subscriber_id IN (SELECT old_id FROM mailbox_merges);
DELETE FROM subscribers WHERE id IN (SELECT old_id FROM mailbox_merges);
DROP TABLE merged_subscriptions;
DROP TABLE mailbox_merges;

CREATE UNIQUE INDEX subscribers_by_email_key ON subscribers (email_key);
