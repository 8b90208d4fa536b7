//! Helpers for the examples' tests.

pub(crate) mod webdriver;
