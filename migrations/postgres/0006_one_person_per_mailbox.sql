-- One person per mailbox: addresses compare case-insensitively (`Jo@example.org` and
-- `JO@example.org` are one person), while `email` keeps the form they typed, for
-- sending. Existing case-duplicates merge into the oldest of them; the ledger keeps
-- every event (moved to the merged person), and where any of them unsubscribed, the
-- merged person stays unsubscribed. The key lower-cases ASCII letters only (the "C"
-- collation), as SQLite's lower() does and as `SubscriberEmail::key` does.

ALTER TABLE subscribers
    ADD COLUMN email_key text GENERATED ALWAYS AS (lower(email COLLATE "C")) STORED;

-- Each duplicate and the subscriber it merges into.
CREATE TEMP TABLE mailbox_merges ON COMMIT DROP AS
SELECT id AS old_id, first_value(id) OVER (PARTITION BY email_key ORDER BY created_at, id) AS new_id
FROM subscribers
WHERE email_key IN (SELECT email_key FROM subscribers GROUP BY email_key HAVING count(*) > 1);
DELETE FROM mailbox_merges WHERE old_id = new_id;

-- The merged person's subscription to each list: unsubscribed if any of them
-- unsubscribed, else confirmed if any confirmed.
CREATE TEMP TABLE merged_subscriptions ON COMMIT DROP AS
SELECT coalesce(m.new_id, sub.subscriber_id) AS subscriber_id, sub.list_id,
       CASE WHEN bool_or(sub.status = 'unsubscribed') THEN 'unsubscribed'
            WHEN bool_or(sub.status = 'confirmed') THEN 'confirmed' ELSE 'pending' END AS status,
       min(sub.created_at) AS created_at,
       min(sub.confirmed_at) AS confirmed_at,
       CASE WHEN bool_or(sub.status = 'unsubscribed') THEN max(sub.unsubscribed_at) END AS unsubscribed_at,
       max(sub.updated_at) AS updated_at
FROM subscriptions sub LEFT JOIN mailbox_merges m ON m.old_id = sub.subscriber_id
WHERE sub.subscriber_id IN (SELECT old_id FROM mailbox_merges UNION SELECT new_id FROM mailbox_merges)
GROUP BY 1, 2;

INSERT INTO subscriptions (subscriber_id, list_id, status, created_at, confirmed_at, unsubscribed_at, updated_at)
SELECT subscriber_id, list_id, status, created_at, confirmed_at, unsubscribed_at, updated_at
FROM merged_subscriptions
ON CONFLICT (subscriber_id, list_id) DO UPDATE SET
    status = excluded.status, created_at = excluded.created_at,
    confirmed_at = excluded.confirmed_at, unsubscribed_at = excluded.unsubscribed_at,
    updated_at = excluded.updated_at;

-- Everything that named a duplicate now names the merged person.
UPDATE consent_events e SET subscriber_id = m.new_id FROM mailbox_merges m WHERE e.subscriber_id = m.old_id;
UPDATE confirmation_tokens t SET subscriber_id = m.new_id FROM mailbox_merges m WHERE t.subscriber_id = m.old_id;
UPDATE outbox o SET subscriber_id = m.new_id FROM mailbox_merges m WHERE o.subscriber_id = m.old_id;
-- A copy of an issue still to go goes once; copies already sent stay as history.
UPDATE deliveries d SET subscriber_id = m.new_id
FROM (SELECT DISTINCT ON (d.issue_id, m.new_id) d.issue_id, d.subscriber_id, m.new_id
      FROM deliveries d JOIN mailbox_merges m ON m.old_id = d.subscriber_id
      WHERE NOT EXISTS (SELECT 1 FROM deliveries x WHERE x.issue_id = d.issue_id AND x.subscriber_id = m.new_id)
      ORDER BY d.issue_id, m.new_id, d.subscriber_id) m
WHERE d.issue_id = m.issue_id AND d.subscriber_id = m.subscriber_id;
UPDATE deliveries SET status = 'skipped', lease_until = NULL
WHERE subscriber_id IN (SELECT old_id FROM mailbox_merges) AND status IN ('queued', 'sending');

DELETE FROM subscriptions WHERE subscriber_id IN (SELECT old_id FROM mailbox_merges);
DELETE FROM subscribers WHERE id IN (SELECT old_id FROM mailbox_merges);

CREATE UNIQUE INDEX subscribers_by_email_key ON subscribers (email_key);
