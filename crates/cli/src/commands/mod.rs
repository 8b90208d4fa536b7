//! One module per command; each is a few library calls.

mod login;
mod logout;
mod probe;
mod profiles;
mod request;
mod status;
mod token;

use std::sync::Arc;

use arcgis_auth_core::{HttpClient, Portal};
use arcgis_auth_flows::profile::{Profiles, RenewalSecrets, profile_key};
use arcgis_auth_flows::{FlowError, FlowErrorKind, ManagerConfig, TokenManager};
use arcgis_auth_storage::{SessionKind, SessionRecord, SessionStore, WebTierCredentialId};

use crate::cli::{Cli, Command, SecretArgs};
use crate::exit::{CliError, SIGN_IN, USAGE};
use crate::read_once::ReadOnce;
use crate::secrets;
use crate::store::StoreSpec;

/// What every command works with.
pub(crate) struct Context {
    /// `--profile`.
    pub(crate) profile: String,
    /// `--portal`, when given (or from `ARCGIS_PORTAL`).
    pub(crate) portal: Option<Portal>,
    /// The profiles in the chosen store.
    pub(crate) profiles: Profiles,
    /// The HTTP client for the portal (with `--ca-cert`'s roots), holding no credential.
    pub(crate) http: HttpClient,
}

/// Runs the parsed command line.
pub(crate) async fn run(cli: Cli) -> Result<(), CliError> {
    arcgis_auth_flows::profile::profile_key(&cli.profile)
        .map_err(|e| CliError::usage(format!("--profile `{}`: {}", cli.profile, e.message())))?;
    let spec = match cli.store {
        Some(spec) => spec,
        None => StoreSpec::from_environment()?,
    };
    let ca_cert = match &cli.ca_cert {
        Some(path) => Some(std::fs::read(path).map_err(|e| {
            CliError::usage(format!(
                "--ca-cert {}: cannot be read ({e})",
                path.display()
            ))
        })?),
        None => None,
    };
    // The same bundle for the portal and a rediss:// store.
    let store = spec
        .open(ca_cert.as_deref())
        .await
        .map_err(|e| e.context(format_args!("store {spec}")))?;
    let http = match (&cli.ca_cert, &ca_cert) {
        (Some(path), Some(pem)) => HttpClient::with_root_certificates(pem)
            .map_err(|e| CliError::from(e).context(format_args!("--ca-cert {}", path.display())))?,
        _ => HttpClient::new()?,
    };
    let ctx = Context {
        profile: cli.profile,
        portal: cli.portal,
        profiles: profiles(store, http.clone()),
        http,
    };
    match cli.command {
        Command::Login { method } => login::run(&ctx, method).await,
        Command::Token { json, secret } => token::run(&ctx, json, &secret).await,
        Command::Request {
            url,
            method,
            data,
            secret,
        } => request::run(&ctx, url, method, data, &secret).await,
        Command::Status { json } => status::run(&ctx, json).await,
        Command::Logout => logout::run(&ctx).await,
        Command::Profiles => profiles::run(&ctx).await,
        Command::Probe { json } => probe::run(&ctx, json).await,
    }
}

impl Context {
    /// The portal to sign in to: `--portal`, or ArcGIS Online.
    pub(crate) fn login_portal(&self) -> Portal {
        self.portal.clone().unwrap_or_else(Portal::arcgis_online)
    }

    /// The profile's stored session, or the "sign in first" error (status 3).
    pub(crate) async fn session(&self) -> Result<SessionRecord, CliError> {
        match self.profiles.load(&self.profile).await? {
            Some(record) => Ok(record),
            None => Err(self.no_session()),
        }
    }

    /// The "no session" error for this profile.
    pub(crate) fn no_session(&self) -> CliError {
        CliError::new(
            SIGN_IN,
            format!(
                "no session in profile `{}`: sign in with `arcgis-auth{} login \
                 app|user|password|pki|basic`",
                self.profile,
                self.profile_flag()
            ),
        )
    }

    /// ` --profile NAME` when it is not the default, for suggested commands.
    fn profile_flag(&self) -> String {
        if self.profile == "default" {
            String::new()
        } else {
            format!(" --profile {}", self.profile)
        }
    }

    /// Reads the profile's session from the store, once: the manager this
    /// opens (renewing with `secrets`) starts from that reading instead of
    /// reading the store again on its first call. `None` when the profile
    /// holds no session.
    pub(crate) async fn open_once(
        &self,
        secrets: impl FnOnce(&SessionRecord) -> Result<RenewalSecrets, CliError>,
    ) -> Result<Option<(TokenManager, SessionRecord)>, CliError> {
        let key = profile_key(&self.profile)?;
        let store = self.profiles.store();
        let Some(reading) = store.load(&key).await? else {
            return Ok(None);
        };
        let record = reading.record.clone();
        let secrets = secrets(&record)?;
        // The same profiles as `self.profiles` (see `run`), over the reading.
        let profiles = profiles(
            Arc::new(ReadOnce::new(Arc::clone(store), key, reading)),
            self.http.clone(),
        );
        let manager = profiles.open(&self.profile, secrets)?;
        Ok(Some((manager, record)))
    }

    /// A manager for the profile's session that can renew it: user sessions
    /// with their refresh token, app sessions with the client secret from
    /// `secret` (when one is given there). Refuses a profile signed in to
    /// another portal than an explicit `--portal`. Reads the store once.
    pub(crate) async fn manager(
        &self,
        secret: &SecretArgs,
    ) -> Result<(TokenManager, SessionRecord), CliError> {
        self.open_once(|record| self.renewal_secrets(record, secret))
            .await?
            .ok_or_else(|| self.no_session())
    }

    /// What renews `record`: checks `--portal`, then reads the client secret
    /// of an app session (when `secret` names one).
    fn renewal_secrets(
        &self,
        record: &SessionRecord,
        secret: &SecretArgs,
    ) -> Result<RenewalSecrets, CliError> {
        if let Some(portal) = &self.portal
            && portal != &record.portal
        {
            return Err(CliError::usage(format!(
                "profile `{}` is signed in to {}, not {portal}: choose another --profile, or \
                 sign in to {portal} first",
                self.profile, record.portal
            )));
        }
        let mut secrets = RenewalSecrets::new();
        if record.kind == SessionKind::App
            && let Some(secret) = secrets::client_secret(secret, false)?
        {
            secrets = secrets.client_secret(secret);
        }
        if let Some(http) = self.web_tier_http(record)? {
            secrets = secrets.web_tier(http);
        }
        Ok(secrets)
    }

    /// For a web-tier session: the client presenting its credential, read
    /// again (the certificate's files, or the Basic password from
    /// `ARCGIS_PASSWORD`); `None` for other sessions, or when the password
    /// is not at hand.
    pub(crate) fn web_tier_http(
        &self,
        record: &SessionRecord,
    ) -> Result<Option<HttpClient>, CliError> {
        if record.kind != SessionKind::WebTier {
            return Ok(None);
        }
        crate::web_tier::client_for(&self.http, record)
    }

    /// Turns a failure to get a token into the error a user can act on.
    pub(crate) fn token_error(
        &self,
        err: FlowError,
        record: &SessionRecord,
        secret: &SecretArgs,
    ) -> CliError {
        let profile = &self.profile;
        let login = format!("arcgis-auth{} login", self.profile_flag());
        match err.kind() {
            FlowErrorKind::NoSession => self.no_session(),
            FlowErrorKind::SignInRequired if record.kind == SessionKind::App => {
                let source = if secret.client_secret_stdin {
                    "standard input".to_owned()
                } else {
                    format!("the environment variable {}", secret.client_secret_env)
                };
                CliError::new(
                    SIGN_IN,
                    format!(
                        "the app token of profile `{profile}` expired and no client secret was \
                         found in {source}: set it, or sign in again with `{login} app`"
                    ),
                )
            }
            FlowErrorKind::SignInRequired | FlowErrorKind::NotRenewable => {
                let how = match (record.kind, &record.web_tier) {
                    (SessionKind::User, _) => "user",
                    (SessionKind::GenerateToken, _) => "password",
                    (SessionKind::WebTier, Some(WebTierCredentialId::Basic { .. })) => {
                        return CliError::new(
                            SIGN_IN,
                            format!(
                                "profile `{profile}`: the token expired and the directory \
                                 password is not in ARCGIS_PASSWORD (it is never stored): set \
                                 it, or sign in again with `{login} basic`"
                            ),
                        );
                    }
                    (SessionKind::WebTier, Some(WebTierCredentialId::Kerberos { .. })) => {
                        "kerberos"
                    }
                    (SessionKind::WebTier, _) => "pki",
                    _ => "app|user|password",
                };
                CliError::new(
                    SIGN_IN,
                    format!(
                        "profile `{profile}`: {} (run `{login} {how}`)",
                        err.message().trim_end_matches('.')
                    ),
                )
            }
            _ => CliError::from(err).context(format_args!("profile `{profile}`")),
        }
    }
}

/// `--expiration` for user sign-ins: minutes, or -1 for the maximum.
pub(crate) fn refresh_expiration(
    minutes: Option<i64>,
) -> Result<Option<arcgis_auth_core::Expiration>, CliError> {
    match minutes {
        None => Ok(None),
        Some(-1) => Ok(Some(arcgis_auth_core::Expiration::MAXIMUM)),
        Some(m) => u32::try_from(m)
            .ok()
            .filter(|m| *m > 0)
            .map(|m| Some(arcgis_auth_core::Expiration::minutes(m)))
            .ok_or_else(|| {
                CliError::new(
                    USAGE,
                    format!("--expiration {m}: give a number of minutes, or -1 for the maximum"),
                )
            }),
    }
}

/// The profiles of one command. A command asks for a token and exits, so
/// its managers do not follow the store's change events (with Redis, that
/// would open a second connection per call for nothing).
fn profiles(store: Arc<dyn SessionStore>, http: HttpClient) -> Profiles {
    let mut config = ManagerConfig::default();
    config.follow_store = false;
    Profiles::new(store, http).with_config(config)
}

#[cfg(test)]
mod tests {
    use arcgis_auth_core::ExposeSecret;
    use arcgis_auth_storage::test_util::{FaultyStore, Op};
    use arcgis_auth_storage::{SaveMode, SessionStore};

    use super::*;
    use crate::read_once::tests::app_session;

    /// A context over a counting store holding a fresh app session as `default`.
    async fn context() -> (Context, Arc<FaultyStore>) {
        let counting = Arc::new(FaultyStore::new(Default::default()));
        let store: Arc<dyn SessionStore> = counting.clone();
        let key = profile_key("default").unwrap();
        store
            .save(&key, &app_session("fresh"), SaveMode::Create)
            .await
            .unwrap();
        let http = HttpClient::new().unwrap();
        let ctx = Context {
            profile: "default".to_owned(),
            portal: None,
            profiles: profiles(store, http.clone()),
            http,
        };
        (ctx, counting)
    }

    fn no_secret() -> SecretArgs {
        SecretArgs {
            client_secret_env: "ARCGIS_AUTH_TEST_NO_SUCH_VARIABLE".to_owned(),
            client_secret_stdin: false,
        }
    }

    #[tokio::test]
    async fn a_token_from_a_fresh_session_reads_the_store_once() {
        let (ctx, counting) = context().await;
        let (manager, record) = ctx.manager(&no_secret()).await.unwrap();
        assert_eq!(record.kind, SessionKind::App);
        let token = manager.token().await.unwrap();
        assert_eq!(token.secret().expose_secret(), "fresh");
        assert_eq!(counting.calls(Op::Load), 1);
        // The manager's later reads go to the store as before.
        manager.clear().await;
        manager.token().await.unwrap();
        assert_eq!(counting.calls(Op::Load), 2);
    }

    #[tokio::test]
    async fn logout_reads_the_store_once() {
        let (ctx, counting) = context().await;
        logout::run(&ctx).await.unwrap();
        assert_eq!(counting.calls(Op::Load), 1);
        assert!(ctx.profiles.load("default").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn no_session_and_another_portal_are_refused_after_one_read() {
        let (mut ctx, counting) = context().await;
        ctx.portal = Some(Portal::parse("https://other.example.com/portal").unwrap());
        let err = ctx.manager(&no_secret()).await.unwrap_err();
        assert_eq!(err.code(), USAGE);
        assert_eq!(counting.calls(Op::Load), 1);
        ctx.profile = "nobody".to_owned();
        let err = ctx.manager(&no_secret()).await.unwrap_err();
        assert_eq!(err.code(), SIGN_IN);
        assert_eq!(counting.calls(Op::Load), 2);
    }
}
