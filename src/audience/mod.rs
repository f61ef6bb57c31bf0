//! The audience: who the people on a list are and how they join and leave.
//!
//! `subscriber` turns what a person typed into values that are valid by construction;
//! `subscription` decides what a sign-up or a confirmation does to someone pending,
//! confirmed or unsubscribed; `budgets` caps confirmation mails; `import` brings people
//! in from a CSV file; `csv` writes them out; `typos` catches mistyped domains; `suppression`
//! keeps mail from addresses that bounced or complained; `segment` picks part of a list; `lists`
//! names them.

pub mod budgets;
pub mod csv;
pub mod erasure;
pub mod import;
pub mod lists;
pub mod preferences;
pub mod segment;
pub mod subscriber;
pub mod subscription;
pub mod suppression;
pub mod typos;
