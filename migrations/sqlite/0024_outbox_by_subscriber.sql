-- A person's mails, by kind and time: a sign-up counts the "already subscribed" mails
-- they had in the last day, and erasing someone finds their rows, without reading the
-- whole outbox.
CREATE INDEX outbox_by_subscriber ON outbox (subscriber_id, kind, created_at);
