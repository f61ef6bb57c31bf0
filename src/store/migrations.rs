//! Migrations are compiled into the binary, so `newsletter` runs from anywhere. The
//! lists below must name every file in `migrations/` (a test checks it).

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};

/// (version, description, SQL) for SQLite.
pub const SQLITE_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "signup",
        include_str!("../../migrations/sqlite/0001_signup.sql"),
    ),
    (
        2,
        "staff_api",
        include_str!("../../migrations/sqlite/0002_staff_api.sql"),
    ),
    (
        3,
        "delivery_queue",
        include_str!("../../migrations/sqlite/0003_delivery_queue.sql"),
    ),
    (
        4,
        "staff_users",
        include_str!("../../migrations/sqlite/0004_staff_users.sql"),
    ),
    (
        5,
        "imports",
        include_str!("../../migrations/sqlite/0005_imports.sql"),
    ),
    (
        6,
        "one_person_per_mailbox",
        include_str!("../../migrations/sqlite/0006_one_person_per_mailbox.sql"),
    ),
    (
        7,
        "signup_budgets",
        include_str!("../../migrations/sqlite/0007_signup_budgets.sql"),
    ),
    (
        8,
        "login_attempts",
        include_str!("../../migrations/sqlite/0008_login_attempts.sql"),
    ),
    (
        9,
        "test_copy_requester",
        include_str!("../../migrations/sqlite/0009_test_copy_requester.sql"),
    ),
    (
        10,
        "archive_withdrawal",
        include_str!("../../migrations/sqlite/0010_archive_withdrawal.sql"),
    ),
    (
        11,
        "issue_numbers",
        include_str!("../../migrations/sqlite/0011_issue_numbers.sql"),
    ),
];

/// (version, description, SQL) for PostgreSQL: the same versions as SQLite.
pub const POSTGRES_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "signup",
        include_str!("../../migrations/postgres/0001_signup.sql"),
    ),
    (
        2,
        "staff_api",
        include_str!("../../migrations/postgres/0002_staff_api.sql"),
    ),
    (
        3,
        "delivery_queue",
        include_str!("../../migrations/postgres/0003_delivery_queue.sql"),
    ),
    (
        4,
        "staff_users",
        include_str!("../../migrations/postgres/0004_staff_users.sql"),
    ),
    (
        5,
        "imports",
        include_str!("../../migrations/postgres/0005_imports.sql"),
    ),
    (
        6,
        "one_person_per_mailbox",
        include_str!("../../migrations/postgres/0006_one_person_per_mailbox.sql"),
    ),
    (
        7,
        "signup_budgets",
        include_str!("../../migrations/postgres/0007_signup_budgets.sql"),
    ),
    (
        8,
        "login_attempts",
        include_str!("../../migrations/postgres/0008_login_attempts.sql"),
    ),
    (
        9,
        "test_copy_requester",
        include_str!("../../migrations/postgres/0009_test_copy_requester.sql"),
    ),
    (
        10,
        "archive_withdrawal",
        include_str!("../../migrations/postgres/0010_archive_withdrawal.sql"),
    ),
    (
        11,
        "issue_numbers",
        include_str!("../../migrations/postgres/0011_issue_numbers.sql"),
    ),
];

pub fn migrator(migrations: &'static [(i64, &'static str, &'static str)]) -> Migrator {
    Migrator::with_migrations(
        migrations
            .iter()
            .map(|(version, description, sql)| {
                Migration::new(
                    *version,
                    (*description).into(),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}
