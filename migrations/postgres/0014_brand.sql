-- The brand and wording admins set in the browser. Each save is a new version, kept
-- for good: an issue records the version it went out with. The consent sentence has
-- versions of its own, named in the ledger (`consent_events.wording_version`), so the
-- words each person agreed to can always be shown.
CREATE TABLE consent_wordings (
    version    TEXT PRIMARY KEY,
    text       TEXT NOT NULL,
    -- SHA-256 of the text, hex, as the ledger's `wording_hash`.
    hash       TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE brand_versions (
    version         BIGINT PRIMARY KEY,
    -- The brand's fields as JSON (`brand::Brand`); a field added later reads as its default.
    brand           TEXT NOT NULL,
    consent_version TEXT NOT NULL REFERENCES consent_wordings (version),
    created_by      TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL
);

-- What the service said before it could be changed (`brand::BrandVersion::first`).
INSERT INTO consent_wordings (version, text, hash, created_by, created_at)
VALUES ('signup-2026-11', 'I would like to receive In Partnership, the quarterly newsletter of the Gloucestershire VCSE Strategic Partnership, by email. I can unsubscribe at any time with the link at the foot of every issue.', 'fc1d988d03afacf2827385ff3e65d0d5966efed791fceee33ca2883bdfe8ffaa', 'newsletter', now());

INSERT INTO brand_versions (version, brand, consent_version, created_by, created_at)
VALUES (1, '{"organisation":"Gloucestershire VCSE Strategic Partnership","newsletter":"In Partnership","description":"the quarterly newsletter of the Gloucestershire VCSE Strategic Partnership","logo":null,"header_colour":"#1d4f91","header_text_colour":"#ffffff","link_colour":"#1d4f91","postal_address":"","contact":"","privacy_url":"","signup_intro":"Every quarter we write about how the voluntary, community and social enterprise sector in Gloucestershire works with the NHS, the county council and other partners in One Gloucestershire. We will send you an email to confirm your address first.","consent_text":"I would like to receive In Partnership, the quarterly newsletter of the Gloucestershire VCSE Strategic Partnership, by email. I can unsubscribe at any time with the link at the foot of every issue."}', 'signup-2026-11', 'newsletter', now());
