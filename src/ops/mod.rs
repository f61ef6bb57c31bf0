//! What an operator runs by hand, beside `serve`: `backup`, `doctor`, and the
//! `bounces` commands.

pub mod backup;
pub mod bounces;
pub mod dns;
pub mod doctor;
