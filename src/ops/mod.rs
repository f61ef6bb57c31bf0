//! What an operator runs by hand, beside `serve`: `backup` (and, in time, `doctor`).

pub mod backup;
