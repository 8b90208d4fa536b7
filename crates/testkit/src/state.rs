//! The portal's memory: apps, users, codes, tokens, counters, failures, clock.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use arcgis_auth_core::oauth2::CsrfToken;
use arcgis_auth_core::{Clock, SecretString, ServerRoot, Timestamp};

use crate::calls::{Calls, Endpoint};
use crate::config::{ApiKeySpec, App, Federation, User};
use crate::failure::Failure;
use crate::tokens::{IssuedToken, TokenKind};

/// The shared, lockable state behind the portal and every server.
pub(crate) type Shared = Arc<Mutex<State>>;

/// Locks the state; a panic in another thread never makes the portal unusable.
pub(crate) fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Portal-wide settings fixed at start.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) ssl: bool,
    pub(crate) send_refresh_expires_in: bool,
    pub(crate) org_cap: Option<u32>,
    /// The sharing root's path, e.g. `/sharing/rest` or `/portal/sharing/rest`.
    pub(crate) sharing_path: String,
    /// The sharing root, e.g. `http://127.0.0.1:1234/sharing/rest`.
    pub(crate) sharing_root: String,
    /// The portal's URL root (what servers call `owningSystemUrl`).
    pub(crate) url_root: String,
    /// The path of the portal's hosted services on its origin,
    /// `/TestkitOrg0001/arcgis/rest/services`.
    pub(crate) hosted_services_path: String,
    /// `{origin}{hosted_services_path}`.
    pub(crate) hosted_services_root: String,
    /// The web tier in front of the portal and its servers, if any.
    pub(crate) web_tier: Option<crate::web_tier::WebTier>,
}

/// A server as the state knows it.
#[derive(Debug, Clone)]
pub(crate) struct ServerState {
    pub(crate) name: String,
    pub(crate) federation: Federation,
    pub(crate) short_lived_minutes: u32,
    /// `http://127.0.0.1:{port}/{name}`.
    pub(crate) root: String,
    pub(crate) server_root: ServerRoot,
}

/// PKCE as asked for on `oauth2/authorize`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PkceMethod {
    Plain,
    S256,
}

/// An authorization code waiting to be exchanged.
#[derive(Debug, Clone)]
pub(crate) struct CodeRecord {
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) challenge: Option<(PkceMethod, String)>,
    pub(crate) username: String,
    pub(crate) refresh_minutes: i64,
    pub(crate) expires_at: Timestamp,
}

/// An access token of any kind (user, app, implicit, generated, server).
#[derive(Debug, Clone)]
pub(crate) struct AccessRecord {
    pub(crate) kind: TokenKind,
    pub(crate) username: Option<String>,
    pub(crate) client_id: Option<String>,
    pub(crate) issued_at: Timestamp,
    pub(crate) expires_at: Timestamp,
    pub(crate) revoked: bool,
    /// The refresh token it was made with (or alongside), so revoking that revokes this.
    pub(crate) parent_refresh: Option<String>,
    /// `client=referer` binding of `generateToken` tokens.
    pub(crate) referer: Option<String>,
    /// The items an API key is limited to (`None`: no limit).
    pub(crate) items: Option<Vec<String>>,
    seq: u64,
}

impl AccessRecord {
    /// This record as the public log shows it, with its token.
    pub(crate) fn issued_token(&self, token: &str) -> IssuedToken {
        IssuedToken {
            token: SecretString::from(token.to_owned()),
            kind: self.kind.clone(),
            username: self.username.clone(),
            client_id: self.client_id.clone(),
            issued_at: self.issued_at,
            expires_at: self.expires_at,
            revoked: self.revoked,
        }
    }
}

/// A refresh token.
#[derive(Debug, Clone)]
pub(crate) struct RefreshRecord {
    pub(crate) client_id: String,
    pub(crate) username: String,
    pub(crate) redirect_uri: String,
    pub(crate) issued_at: Timestamp,
    pub(crate) expires_at: Timestamp,
    pub(crate) revoked: bool,
    pub(crate) lifetime_minutes: i64,
    seq: u64,
}

/// Where a token is being used.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Audience<'a> {
    /// The portal (and its own secured resources).
    Portal,
    /// The named server.
    Server(&'a str),
    /// The named server's Administrator API (`{root}/admin/...`).
    ServerAdmin(&'a str),
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// No such token (or one for another audience).
    Unknown,
    /// Expired or revoked.
    Dead,
}

/// Everything the fake portal remembers.
#[derive(Debug)]
pub(crate) struct State {
    base_clock: Arc<dyn Clock>,
    offset_ms: i64,
    pub(crate) apps: Vec<App>,
    pub(crate) users: Vec<User>,
    pub(crate) signed_in: Option<String>,
    pub(crate) deny_next: u32,
    pub(crate) codes: HashMap<String, CodeRecord>,
    pub(crate) access: HashMap<String, AccessRecord>,
    pub(crate) refresh: HashMap<String, RefreshRecord>,
    pub(crate) calls: Calls,
    failures: HashMap<(Option<String>, Endpoint), VecDeque<Failure>>,
    pub(crate) settings: Settings,
    pub(crate) servers: Vec<ServerState>,
    /// Requests the web tier stopped (no or a wrong web-tier credential).
    pub(crate) web_tier_refusals: usize,
    seq: u64,
}

/// A fresh random token: `bytes` random bytes from oauth2's CSPRNG, base64url.
pub(crate) fn random_token(bytes: u32) -> String {
    CsrfToken::new_random_len(bytes).into_secret()
}

impl State {
    pub(crate) fn new(
        base_clock: Arc<dyn Clock>,
        apps: Vec<App>,
        users: Vec<User>,
        signed_in: Option<String>,
        settings: Settings,
    ) -> State {
        State {
            base_clock,
            offset_ms: 0,
            apps,
            users,
            signed_in,
            deny_next: 0,
            codes: HashMap::new(),
            access: HashMap::new(),
            refresh: HashMap::new(),
            calls: Calls::default(),
            failures: HashMap::new(),
            settings,
            servers: Vec::new(),
            web_tier_refusals: 0,
            seq: 0,
        }
    }

    // ---- clock -------------------------------------------------------------

    /// The portal's "now": its base clock moved by the offset.
    pub(crate) fn now(&self) -> Timestamp {
        let base = self.base_clock.now();
        Timestamp::from_unix_millis(base.as_unix_millis().saturating_add(self.offset_ms))
    }

    pub(crate) fn shift_clock(&mut self, ms: i64) {
        self.offset_ms = self.offset_ms.saturating_add(ms);
    }

    pub(crate) fn offset_ms(&self) -> i64 {
        self.offset_ms
    }

    // ---- lookups -----------------------------------------------------------

    pub(crate) fn app(&self, client_id: &str) -> Option<&App> {
        self.apps.iter().find(|a| a.client_id == client_id)
    }

    pub(crate) fn user(&self, username: &str) -> Option<&User> {
        self.users.iter().find(|u| u.username == username)
    }

    pub(crate) fn server_index(&self, name: &str) -> Option<usize> {
        self.servers.iter().position(|s| s.name == name)
    }

    // ---- failures ----------------------------------------------------------

    pub(crate) fn push_failures(
        &mut self,
        server: Option<String>,
        endpoint: Endpoint,
        n: usize,
        failure: Failure,
    ) {
        let queue = self.failures.entry((server, endpoint)).or_default();
        queue.extend(std::iter::repeat_n(failure, n));
    }

    pub(crate) fn clear_failures(&mut self) {
        self.failures.clear();
    }

    pub(crate) fn next_failure_is_reset(&self, server: Option<&str>, endpoint: Endpoint) -> bool {
        self.failures
            .get(&(server.map(str::to_owned), endpoint))
            .and_then(VecDeque::front)
            .is_some_and(|f| *f == Failure::ConnectionReset)
    }

    pub(crate) fn take_failure(
        &mut self,
        server: Option<&str>,
        endpoint: Endpoint,
    ) -> Option<Failure> {
        self.failures
            .get_mut(&(server.map(str::to_owned), endpoint))
            .and_then(VecDeque::pop_front)
    }

    // ---- issuing -----------------------------------------------------------

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Issues an access token of any kind, valid for `minutes` from now.
    pub(crate) fn issue_access(
        &mut self,
        kind: TokenKind,
        username: Option<String>,
        client_id: Option<String>,
        lifetime: Duration,
        parent_refresh: Option<String>,
        referer: Option<String>,
    ) -> (String, AccessRecord) {
        let token = random_token(48);
        let now = self.now();
        let record = AccessRecord {
            kind,
            username,
            client_id,
            issued_at: now,
            expires_at: now + lifetime,
            revoked: false,
            parent_refresh,
            referer,
            items: None,
            seq: self.next_seq(),
        };
        self.access.insert(token.clone(), record.clone());
        (token, record)
    }

    /// Creates an API key: `AAPK…` when it never expires, `AAPT…` when it does.
    pub(crate) fn issue_api_key(&mut self, spec: ApiKeySpec) -> (String, AccessRecord) {
        let prefix = if spec.expires_in.is_some() {
            "AAPT"
        } else {
            "AAPK"
        };
        let token = format!("{prefix}{}", random_token(48));
        let now = self.now();
        let record = AccessRecord {
            kind: TokenKind::ApiKey,
            username: None,
            client_id: Some(spec.client_id),
            issued_at: now,
            expires_at: spec.expires_in.map_or(Timestamp::MAX, |d| now + d),
            revoked: false,
            parent_refresh: None,
            referer: None,
            items: spec.items,
            seq: self.next_seq(),
        };
        self.access.insert(token.clone(), record.clone());
        (token, record)
    }

    /// Revokes the API key `token`; `false` when it is not one.
    pub(crate) fn revoke_api_key(&mut self, token: &str) -> bool {
        match self.access.get_mut(token) {
            Some(record) if record.kind == TokenKind::ApiKey => {
                record.revoked = true;
                true
            }
            _ => false,
        }
    }

    /// Issues a refresh token valid for `minutes` from now.
    pub(crate) fn issue_refresh(
        &mut self,
        client_id: String,
        username: String,
        redirect_uri: String,
        minutes: i64,
    ) -> (String, RefreshRecord) {
        let token = random_token(64);
        let now = self.now();
        let record = RefreshRecord {
            client_id,
            username,
            redirect_uri,
            issued_at: now,
            expires_at: now + minutes_to_duration(minutes),
            revoked: false,
            lifetime_minutes: minutes,
            seq: self.next_seq(),
        };
        self.refresh.insert(token.clone(), record.clone());
        (token, record)
    }

    // ---- checking ----------------------------------------------------------

    /// The record behind `token` if it is valid for `audience` right now.
    pub(crate) fn check_access(
        &self,
        token: &str,
        audience: Audience<'_>,
        referer: Option<&str>,
    ) -> Result<&AccessRecord, Refusal> {
        let record = self.access.get(token).ok_or(Refusal::Unknown)?;
        let audience_ok = match (&record.kind, audience) {
            (TokenKind::Server { server }, Audience::Server(name)) => server == name,
            (TokenKind::ServerAdmin { server }, Audience::ServerAdmin(name)) => server == name,
            (TokenKind::Server { .. } | TokenKind::ServerAdmin { .. }, Audience::Portal) => false,
            (_, Audience::Server(_) | Audience::ServerAdmin(_)) => false,
            (_, Audience::Portal) => true,
        };
        if !audience_ok {
            return Err(Refusal::Unknown);
        }
        if record.revoked || self.now() >= record.expires_at {
            return Err(Refusal::Dead);
        }
        if let Some(bound) = &record.referer
            && !referer.is_some_and(|r| r.starts_with(bound.as_str()))
        {
            return Err(Refusal::Unknown);
        }
        Ok(record)
    }

    // ---- controls ----------------------------------------------------------

    /// Expires access tokens of every kind but API keys (and, with `refresh`,
    /// API keys, refresh tokens and codes too).
    pub(crate) fn expire_all(&mut self, refresh: bool) {
        let now = self.now();
        for r in self.access.values_mut() {
            if refresh || r.kind != TokenKind::ApiKey {
                r.expires_at = r.expires_at.min(now);
            }
        }
        if refresh {
            for r in self.refresh.values_mut() {
                r.expires_at = r.expires_at.min(now);
            }
            for c in self.codes.values_mut() {
                c.expires_at = c.expires_at.min(now);
            }
        }
    }

    /// Revokes every token and refresh token, and forgets pending codes.
    pub(crate) fn revoke_all(&mut self) {
        for r in self.access.values_mut() {
            r.revoked = true;
        }
        for r in self.refresh.values_mut() {
            r.revoked = true;
        }
        self.codes.clear();
    }

    /// Revokes a refresh token and every access token made from it.
    pub(crate) fn revoke_refresh(&mut self, token: &str) {
        if let Some(r) = self.refresh.get_mut(token) {
            r.revoked = true;
            for a in self.access.values_mut() {
                if a.parent_refresh.as_deref() == Some(token) {
                    a.revoked = true;
                }
            }
        }
    }

    /// The log of everything issued, oldest first.
    pub(crate) fn issued(&self) -> Vec<IssuedToken> {
        let mut all: Vec<(u64, IssuedToken)> = self
            .access
            .iter()
            .map(|(t, r)| (r.seq, r.issued_token(t)))
            .chain(self.refresh.iter().map(|(t, r)| {
                (
                    r.seq,
                    IssuedToken {
                        token: SecretString::from(t.clone()),
                        kind: TokenKind::Refresh,
                        username: Some(r.username.clone()),
                        client_id: Some(r.client_id.clone()),
                        issued_at: r.issued_at,
                        expires_at: r.expires_at,
                        revoked: r.revoked,
                    },
                )
            }))
            .collect();
        all.sort_by_key(|(seq, _)| *seq);
        all.into_iter().map(|(_, t)| t).collect()
    }
}

/// Whole minutes as a duration (negative counts as zero).
pub(crate) fn minutes_to_duration(minutes: i64) -> Duration {
    Duration::from_secs(u64::try_from(minutes).unwrap_or(0).saturating_mul(60))
}
