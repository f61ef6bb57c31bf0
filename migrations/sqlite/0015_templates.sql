-- Issue templates, edited by staff in the browser: every save is a new version, kept
-- for good. The shipped ones are saved as version 1 when the service starts. An issue
-- records the template and brand versions it went out with, when it starts sending,
-- so its archive page and any later copy render as the first did.
CREATE TABLE template_versions (
    name       TEXT NOT NULL,
    version    INTEGER NOT NULL,
    html       TEXT NOT NULL,
    text       TEXT NOT NULL,
    shipped    INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (name, version)
);

ALTER TABLE issues ADD COLUMN template_version INTEGER;
ALTER TABLE issues ADD COLUMN brand_version INTEGER;
