//! Helpers for the examples' tests.

// Each test binary uses its own part of the helpers.
#![allow(dead_code)]

pub(crate) mod chromium;
pub(crate) mod gateway_site;
pub(crate) mod maps_sdk;
pub(crate) mod static_files;
pub(crate) mod webdriver;
