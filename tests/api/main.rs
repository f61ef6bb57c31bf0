//! Integration tests: the real application over HTTP, with a real SMTP server, on
//! SQLite and on PostgreSQL. One test binary, so it links once.

mod support;

mod admin;
mod admin_access;
mod admin_bounces;
mod admin_imports;
mod admin_issues;
mod admin_subscribers;
mod api_spec;
mod archive;
mod bad_input;
mod bounces;
mod brand;
mod confirmation;
mod delivery;
mod disconnects;
mod dkim;
mod inbound;
mod inbound_imap;
mod inbound_postfix;
mod keys;
mod lists;
mod mailbox;
mod media;
mod metrics;
mod migrations;
mod preferences;
mod preflight;
mod return_path;
mod returns_api;
mod running_for_real;
mod segments;
mod sending;
mod sending_by_accident;
mod signup;
mod signup_protection;
mod slow_clients;
mod staff_accounts;
mod staff_api;
mod store;
mod subscribers_api;
mod templates;
mod unsubscribe;
mod webhooks;
mod writing;
