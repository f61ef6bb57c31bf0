-- Each issue has a number, 1, 2, 3... in the order issues were made. A copy's return
-- address names its issue by number (with the subscriber and a MAC), which keeps the
-- address within the 64 characters SMTP allows its local part.
CREATE SEQUENCE issue_numbers AS BIGINT;

ALTER TABLE issues ADD COLUMN number BIGINT;

UPDATE issues SET number = ranked.n
FROM (SELECT id, row_number() OVER (ORDER BY created_at, id) AS n FROM issues) AS ranked
WHERE issues.id = ranked.id;

SELECT setval('issue_numbers', coalesce((SELECT max(number) FROM issues), 0) + 1, false);

ALTER TABLE issues
    ALTER COLUMN number SET DEFAULT nextval('issue_numbers'),
    ALTER COLUMN number SET NOT NULL;

CREATE UNIQUE INDEX issues_by_number ON issues (number);
