-- Issue templates, edited by staff in the browser: every save is a new version, kept
-- for good. The shipped ones are saved as version 1 when the service starts. An issue
-- records the template and brand versions it went out with, when it starts sending,
-- so its archive page and any later copy render as the first did.
CREATE TABLE template_versions (
    name       TEXT NOT NULL,
    version    BIGINT NOT NULL,
    html       TEXT NOT NULL,
    text       TEXT NOT NULL,
    shipped    BOOLEAN NOT NULL,
    created_by TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (name, version)
);

ALTER TABLE issues ADD COLUMN template_version BIGINT;
ALTER TABLE issues ADD COLUMN brand_version BIGINT;
