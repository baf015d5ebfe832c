//! End-to-end tests live in this crate's `tests/` folder; there is no library code here.
