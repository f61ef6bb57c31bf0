//! Sending: the scheduler starts issues that are due; the outbox worker claims mails
//! and deliveries from the store, builds each message (`mail`), signs it (`dkim`) and
//! hands it to the relay pool (`relay`), or writes `.eml` files when there is none.

pub mod dkim;
pub mod mail;
pub mod outbox;
pub mod quoted_printable;
pub mod rate;
pub mod relay;
pub mod scheduler;
pub mod signing;
