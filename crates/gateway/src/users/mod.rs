//! Users signed in through the gateway (`[user_sign_in]`), a backend-for-frontend:
//! the browser holds a random session id in a cookie; the tokens stay in the
//! session store, each session kept alive by a flows `TokenManager`.
//!
//! - `sessions`: pending sign-ins and sessions in the store, and the managers.
//! - `endpoints`: `/auth/sign-in`, `/auth/callback`, `/auth/sign-out`, `/auth/me`.
//! - `cookies`, `ids`, `return_to`, `pages`: the pieces they are made of.

mod cookies;
mod endpoints;
mod ids;
mod pages;
mod return_to;
mod sessions;

pub(crate) use cookies::{read as read_cookie, strip as strip_cookies};
pub(crate) use endpoints::{callback, me, not_signed_in, post_only, sign_in, sign_out};
pub(crate) use sessions::{UserSession, UserSessions};
