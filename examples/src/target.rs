//! Which portal an example talks to: a real one named with `--portal`, or by
//! default the testkit's fake portal, started in-process on loopback.

use arcgis_auth_core::{Portal, SecretString};
use arcgis_auth_testkit::{
    CONFIDENTIAL_CLIENT_ID, CONFIDENTIAL_CLIENT_SECRET, FakePortal, PASSWORD, PUBLIC_CLIENT_ID,
    USERNAME,
};

use crate::BoxError;
use crate::args::{Args, require_secret};

/// The environment variable a real portal's client secret is read from.
pub const CLIENT_SECRET_VAR: &str = "ARCGIS_CLIENT_SECRET";
/// The environment variable a real portal user's password is read from.
pub const PASSWORD_VAR: &str = "ARCGIS_PASSWORD";

/// The usage lines every example that needs a portal shares.
pub const PORTAL_USAGE: &str =
    "  --portal URL       a real portal (ArcGIS Online: https://www.arcgis.com, or your
                     ArcGIS Enterprise portal URL); default: start the testkit's fake
                     portal on loopback and run against it";

/// The portal an example runs against.
#[derive(Debug)]
pub enum Target {
    /// The testkit's fake portal (the default): everything runs on loopback,
    /// and the example plays the user's browser itself.
    Testkit(Box<FakePortal>),
    /// A real portal named with `--portal`.
    Real(Portal),
}

impl Target {
    /// `--portal URL`, or the testkit portal when it is not given.
    pub async fn from_args(args: &Args) -> Result<Target, BoxError> {
        match args.value("portal") {
            Some(url) => {
                let portal = Portal::parse(url)
                    .map_err(|e| format!("--portal {url} is not a portal URL: {e}"))?;
                println!("Using the portal at {}", portal.sharing_root());
                Ok(Target::Real(portal))
            }
            None => {
                let fake = FakePortal::start().await;
                println!(
                    "Using the testkit's fake portal at {} (pass --portal URL for a real one)",
                    fake.portal_url()
                );
                Ok(Target::Testkit(Box::new(fake)))
            }
        }
    }

    /// Reads the command line (`usage` and [`PORTAL_USAGE`] for `--help`;
    /// `options` take a value, `flags` do not; `--portal` is always known)
    /// and picks the portal.
    pub async fn from_cli(
        usage: &str,
        options: &[&str],
        flags: &[&str],
    ) -> Result<(Args, Target), BoxError> {
        let options: Vec<&str> = options.iter().copied().chain(["portal"]).collect();
        let args = Args::from_env(&format!("{usage}\n{PORTAL_USAGE}"), &options, flags)?;
        let target = Target::from_args(&args).await?;
        Ok((args, target))
    }

    /// The portal.
    pub fn portal(&self) -> Portal {
        match self {
            Target::Testkit(fake) => fake.portal(),
            Target::Real(portal) => portal.clone(),
        }
    }

    /// The fake portal, when running against the testkit.
    pub fn fake(&self) -> Option<&FakePortal> {
        match self {
            Target::Testkit(fake) => Some(fake),
            Target::Real(_) => None,
        }
    }

    /// The client id of a public app (user sign-in): `--client-id`, or the
    /// testkit's public app.
    pub fn public_client_id(&self, args: &Args) -> Result<String, BoxError> {
        self.pick(
            args.value("client-id"),
            PUBLIC_CLIENT_ID,
            "--client-id ID (an app registered for user sign-in)",
        )
    }

    /// The client id and secret of a confidential app (app credentials):
    /// `--client-id` and `$ARCGIS_CLIENT_SECRET`, or the testkit's confidential app.
    pub fn app_credentials(&self, args: &Args) -> Result<(String, SecretString), BoxError> {
        match self {
            Target::Testkit(_) => Ok((
                args.value("client-id")
                    .unwrap_or(CONFIDENTIAL_CLIENT_ID)
                    .to_owned(),
                SecretString::from(CONFIDENTIAL_CLIENT_SECRET),
            )),
            Target::Real(_) => Ok((
                self.pick(args.value("client-id"), "", "--client-id ID")?,
                require_secret(CLIENT_SECRET_VAR, "app's client secret")?,
            )),
        }
    }

    /// A username and password (`generateToken`): `--username` and
    /// `$ARCGIS_PASSWORD`, or the testkit's user.
    pub fn user_credentials(&self, args: &Args) -> Result<(String, SecretString), BoxError> {
        match self {
            Target::Testkit(_) => Ok((USERNAME.to_owned(), SecretString::from(PASSWORD))),
            Target::Real(_) => Ok((
                self.pick(args.value("username"), "", "--username NAME")?,
                require_secret(PASSWORD_VAR, "user's password")?,
            )),
        }
    }

    fn pick(&self, given: Option<&str>, testkit: &str, option: &str) -> Result<String, BoxError> {
        match (given, self) {
            (Some(v), _) => Ok(v.to_owned()),
            (None, Target::Testkit(_)) => Ok(testkit.to_owned()),
            (None, Target::Real(_)) => Err(format!("with --portal, pass {option}").into()),
        }
    }
}
