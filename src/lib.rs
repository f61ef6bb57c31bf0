//! `newsletter`: a self-hosted newsletter service. See README.md for the shape of it.

pub mod budgets;
pub mod dkim;
pub mod domain;
pub mod import;
pub mod issue_mail;
pub mod issues;
pub mod keys;
pub mod mail;
pub mod markdown;
pub mod outbox;
pub mod relay;
pub mod scheduler;
pub mod settings;
pub mod staff;
pub mod startup;
pub mod store;
pub mod subscriber_csv;
pub mod telemetry;
pub mod templates;
pub mod time;
pub mod tokens;
pub mod typos;
pub mod web;
