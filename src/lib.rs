//! `newsletter`: a self-hosted newsletter service. See README.md for the shape of it.
//!
//! Layers, from the bottom: the vocabulary and its rules (`audience`'s subscriber,
//! subscription, budget and import rules, `issues`, `staff`'s accounts, `tokens`,
//! `keys`, `time`), which use nothing above them; `store`, which speaks that
//! vocabulary; the capabilities that use the store (`audience::import`, `sending`,
//! `secrets`); and `web`, `startup` and the command line on top.

pub mod audience;
pub mod brand;
pub mod fields;
pub mod inbound;
pub mod issues;
pub mod keys;
pub mod metrics;
pub mod ops;
pub mod secrets;
pub mod sending;
pub mod settings;
pub mod staff;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod templates;
pub mod time;
pub mod tokens;
pub mod web;
