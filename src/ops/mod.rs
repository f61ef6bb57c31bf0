//! What an operator runs by hand, beside `serve`: `backup` (and, in time, `doctor`).

pub mod backup;
pub mod dns;
pub mod doctor;
