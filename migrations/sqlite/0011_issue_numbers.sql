-- Each issue has a number, 1, 2, 3... in the order issues were made. A copy's return
-- address names its issue by number (with the subscriber and a MAC), which keeps the
-- address within the 64 characters SMTP allows its local part.
ALTER TABLE issues ADD COLUMN number INTEGER;

UPDATE issues SET number = (
    SELECT count(*) FROM issues AS earlier
    WHERE earlier.created_at < issues.created_at
       OR (earlier.created_at = issues.created_at AND earlier.id <= issues.id)
);

CREATE UNIQUE INDEX issues_by_number ON issues (number);
