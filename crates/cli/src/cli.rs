//! The command line: options, commands and their help texts.
//!
//! The help texts are the manual: `arcgis-auth <command> --help` prints them.
//! They are written as prose lines of at most 80 columns, so they read the same
//! on every terminal (and in the snapshot tests that pin them).

use arcgis_auth_core::Portal;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::store::StoreSpec;

const ABOUT_LONG: &str = "\
Sign in to ArcGIS and print tokens, for scripts, CI jobs and curl.

arcgis-auth signs in to ArcGIS Online or an ArcGIS Enterprise portal once,
keeps the session in a store, and from then on prints a valid access token
whenever asked, refreshing or signing in again as needed. It is the ArcGIS
equivalent of `gcloud auth print-access-token`.

Results go to standard output and nothing else does: progress, prompts and
errors go to standard error, so $(arcgis-auth token) is always just the
token. Passwords and client secrets are read from the environment or
standard input, used, and forgotten: they are never written to the store.";

const AFTER_HELP: &str = "\
Exit status:
  0  success
  1  anything else (a damaged store, an internal error)
  2  usage error: a bad option, value or URL
  3  sign-in required: no session, refresh token expired or revoked,
     generateToken session expired, or the portal's web tier wants another
     credential (the message names the `login` to use)
  4  the portal refused: invalid client or credentials, a refused client
     certificate or Basic password, 403, other ArcGIS errors
  5  network failure or an unusable response (also: the store is unreachable)

Environment:
  ARCGIS_PORTAL         the portal, as with --portal
  ARCGIS_AUTH_STORE     the session store, as with --store
  ARCGIS_AUTH_PROFILE   the profile, as with --profile
  ARCGIS_CLIENT_SECRET  the client secret for `login app` and app sessions
  ARCGIS_PASSWORD       the password for `login password` and `login basic`
  ARCGIS_PKCS12_PASSWORD  the password of the PKCS#12 file of `login pki`
  ARCGIS_CA_CERT        extra trusted root certificates, as with --ca-cert

Examples:
  arcgis-auth login app --client-id abc123      (secret in ARCGIS_CLIENT_SECRET)
  arcgis-auth login user --client-id abc123
  curl -H \"X-Esri-Authorization: Bearer $(arcgis-auth token)\" \\
       \"https://www.arcgis.com/sharing/rest/portals/self?f=json\"";

const PORTAL_HELP: &str = "\
The portal to sign in to: its sharing root
(https://host/portal/sharing/rest) or any URL of the portal, such as
https://myorg.maps.arcgis.com. Plain http:// is accepted for loopback
addresses only. Default: ArcGIS Online. Commands other than `login` use the
portal the profile signed in to.";

const STORE_HELP: &str = "\
Where sessions are kept: file:PATH (a JSON file, mode 0600), memory (this
process only), or redis://HOST:PORT[/DB] (shared by every machine that
reaches the server; rediss:// for TLS, with the system's root certificates
or those in SSL_CERT_FILE, plus --ca-cert's). Default: the file
sessions.json in $XDG_CONFIG_HOME/arcgis-auth/ or ~/.config/arcgis-auth/.";

const CA_CERT_HELP: &str = "\
A PEM file of one or more CA certificates to trust besides the system's
roots: for a portal or a rediss:// store whose TLS certificate comes from
a private (enterprise) CA. Verification is never turned off.";

const PROFILE_HELP: &str = "\
The name of the session to use, so that several sign-ins (portals, users,
apps) live side by side in one store.";

/// `arcgis-auth [--portal URL] [--store SPEC] [--profile NAME] <command>`.
#[derive(Debug, Parser)]
#[command(
    name = "arcgis-auth",
    version,
    about = "Sign in to ArcGIS and print tokens, for scripts, CI jobs and curl",
    long_about = ABOUT_LONG,
    after_long_help = AFTER_HELP,
    propagate_version = true,
    max_term_width = 100
)]
pub(crate) struct Cli {
    /// The portal (default: ArcGIS Online).
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "ARCGIS_PORTAL",
        hide_env_values = true,
        value_name = "URL",
        value_parser = parse_portal,
        long_help = PORTAL_HELP
    )]
    pub(crate) portal: Option<Portal>,

    /// Where sessions are kept: file:PATH, memory, redis://HOST:PORT[/DB] or rediss://…
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "ARCGIS_AUTH_STORE",
        hide_env_values = true,
        value_name = "SPEC",
        long_help = STORE_HELP
    )]
    pub(crate) store: Option<StoreSpec>,

    /// Extra trusted root certificates (PEM), for a portal behind a private CA.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "ARCGIS_CA_CERT",
        hide_env_values = true,
        value_name = "PEM",
        long_help = CA_CERT_HELP
    )]
    pub(crate) ca_cert: Option<std::path::PathBuf>,

    /// The session to use (default: `default`).
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "ARCGIS_AUTH_PROFILE",
        hide_env_values = true,
        value_name = "NAME",
        default_value = "default",
        long_help = PROFILE_HELP
    )]
    pub(crate) profile: String,

    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

fn parse_portal(input: &str) -> Result<Portal, String> {
    Portal::parse(input).map_err(|e| e.to_string())
}

/// The commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Sign in and keep the session in the profile.
    #[command(
        long_about = "\
Sign in to the portal and keep the session in the profile.

One way to sign in per subcommand: `app` for an app acting as itself (client
credentials), `user` for a person signing in with their browser
(authorization code with PKCE), `password` for a username and password
(generateToken), and, for an Enterprise portal behind a web tier, `pki` (a
client certificate) and `basic` (a directory user over HTTP Basic). `probe`
says which ones a portal accepts. A new sign-in replaces whatever the profile
held.",
        subcommand_required = true
    )]
    Login {
        /// How to sign in.
        #[command(subcommand)]
        method: LoginMethod,
    },

    /// Print a valid access token.
    #[command(
        long_about = "\
Print a valid access token for the profile, and a newline, on standard output.

Nothing else is printed there, so $(arcgis-auth token) is the token. When the
stored token is about to expire, it is renewed first: user sessions with their
refresh token, app sessions by signing in again with the client secret (read
from the same places as for `login app`). Many processes asking at once renew
the session once between them: the store's refresh lock makes the others wait
for the new token. Transient failures of the portal are retried.

A generateToken session cannot be renewed (its password was never stored):
when it expires, sign in again.",
        after_help = "\
Examples:
  TOKEN=$(arcgis-auth token)
  curl -H \"X-Esri-Authorization: Bearer $(arcgis-auth token)\" \"$URL?f=json\"
  arcgis-auth token --json | jq -r .expires_at"
    )]
    Token {
        /// Print `{"token", "expires_at", "username", "ssl", "portal"}` instead.
        #[arg(
            long,
            long_help = "\
Print a JSON object instead: {\"token\": ..., \"expires_at\": <RFC 3339>,
\"username\": ..., \"ssl\": ..., \"portal\": ...}. `username` is null when the
portal did not say; `ssl` is true when the token must only travel over HTTPS."
        )]
        json: bool,
        #[command(flatten)]
        secret: SecretArgs,
    },

    /// Call an ArcGIS resource with the profile's token.
    #[command(
        long_about = "\
Call an ArcGIS resource with the profile's token and print the response body
on standard output.

The token is attached only where it belongs: the profile's portal, and servers
federated with it. It travels in the X-Esri-Authorization header, never in the
URL. f=json is added when the request does not say otherwise. When ArcGIS
answers that the token is invalid or required (498 or 499), the token is
renewed and the request is sent once more. An ArcGIS error answer is reported
on standard error with the exit status for it; the body is printed only on
success.",
        after_help = "\
Examples:
  arcgis-auth request https://www.arcgis.com/sharing/rest/community/self
  arcgis-auth request \"$SERVICE/query\" --data where=1=1 --data outFields=*
  arcgis-auth request \"$SERVICE/applyEdits\" --method POST --data adds=@edits.json"
    )]
    Request {
        /// The URL to call.
        #[arg(value_name = "URL")]
        url: url::Url,
        /// GET (the default) or POST.
        #[arg(
            long,
            value_enum,
            default_value_t = Method::Get,
            long_help = "\
GET (the default) sends --data as query parameters; POST sends them as a form
body."
        )]
        method: Method,
        /// A parameter to send (repeat for more).
        #[arg(
            long = "data",
            value_name = "KEY=VALUE",
            value_parser = parse_key_value,
            long_help = "\
A parameter to send, as KEY=VALUE; repeat the option for more. A value
starting with @ is read from the file named after it (@- for standard input)."
        )]
        data: Vec<(String, String)>,
        #[command(flatten)]
        secret: SecretArgs,
    },

    /// Show the profile's session, without its tokens.
    #[command(long_about = "\
Show the profile's session: profile, portal, kind of sign-in, user, client id,
and when the access token and the refresh token expire.

No token or secret is ever printed, and nothing is sent to the portal. Exits
with status 3 when the profile has no session.")]
    Status {
        /// Print a JSON object instead.
        #[arg(
            long,
            long_help = "\
Print a JSON object instead: {\"profile\", \"portal\", \"kind\", \"username\",
\"client_id\", \"expires_at\", \"expired\", \"refresh_expires_at\"}, with
RFC 3339 times and null for what is unknown."
        )]
        json: bool,
    },

    /// Sign out: revoke the session where possible and delete it.
    #[command(long_about = "\
Sign out of the profile: revoke its tokens at the portal where the portal
allows it, then delete the session from the store.

User sessions are revoked with their refresh token, which ends every access
token made from it. App and generateToken tokens cannot be revoked: they stay
valid until they expire, but the store no longer holds them. The session is
deleted even when the revocation fails; the exit status then says why.")]
    Logout,

    /// Say which sign-ins the portal accepts; no credentials are sent.
    #[command(
        long_about = "\
Ask the portal how it is secured, without sending any credential: GET
{portal}/sharing/rest/info?f=json. A token-based portal accepts `login user`,
`login app` and `login password`; one behind a web tier (the Web Adaptor
asking for a client certificate, or HTTP Basic against a directory) accepts
`login pki` or `login basic`. Kerberos (Negotiate) and NTLM web tiers are
reported but not supported.",
        after_help = "\
Examples:
  arcgis-auth --portal https://gis.example.com/portal probe
  arcgis-auth --portal https://gis.example.com/portal probe --json | jq .sign_ins"
    )]
    Probe {
        /// Print a JSON object instead.
        #[arg(
            long,
            long_help = "\
Print a JSON object instead: {\"portal\", \"token_based\": true|false,
\"web_tier\": [{\"scheme\", \"realm\"}], \"sign_ins\": [\"user\", \"app\",
\"password\", \"pki\", \"basic\", \"kerberos\"]}."
        )]
        json: bool,
    },

    /// List the profiles in the store.
    #[command(long_about = "\
List the profiles that hold a session in the store, one name per line on
standard output, sorted.")]
    Profiles,
}

/// `login app|user|password|pki|basic`.
#[derive(Debug, Subcommand)]
pub(crate) enum LoginMethod {
    /// Sign in as an app (client credentials).
    #[command(
        long_about = "\
Sign in as an app with its client id and client secret (the OAuth 2
client_credentials grant). The app's token acts as the app, not as a user.

The secret is read from the environment variable ARCGIS_CLIENT_SECRET, from
another variable named by --client-secret-env, or from the first line of
standard input with --client-secret-stdin. It is never stored: `token` reads
it from the same places to sign in again when the app token expires.",
        after_help = "\
Examples:
  ARCGIS_CLIENT_SECRET=... arcgis-auth login app --client-id abc123
  vault read -field=secret kv/arcgis | arcgis-auth login app --client-id abc123 --client-secret-stdin"
    )]
    App {
        /// The app's client id.
        #[arg(long, value_name = "ID")]
        client_id: String,
        #[command(flatten)]
        secret: SecretArgs,
        /// How long the token should live, in minutes.
        #[arg(
            long,
            value_name = "MINUTES",
            long_help = "\
How long the app token should live, in minutes (default 120, at most 20160).
The organisation may grant less."
        )]
        expiration: Option<u32>,
    },

    /// Sign in as a user, in the browser (authorization code + PKCE).
    #[command(
        long_about = "\
Sign in as a user through the portal's sign-in page (the authorization code
grant with PKCE), with a client id registered for the app.

With --redirect loopback (the default), arcgis-auth listens on 127.0.0.1
(on --port, or any free port), prints one line `Open: <URL>` on standard error,
opens that URL in the browser unless --no-browser is given, and finishes when
the browser comes back to it (or gives up after --timeout seconds, five
minutes by default, with status 3). The app must allow the redirect URI
http://127.0.0.1:<port>/callback (ArcGIS accepts any port for
http://127.0.0.1/callback).

With --redirect oob, it prints the URL and reads the code the portal shows
after signing in from standard input: for machines without a browser.

The session is renewed with its refresh token, which lives two weeks unless
--expiration says otherwise.",
        after_help = "\
Examples:
  arcgis-auth login user --client-id abc123
  arcgis-auth --portal https://gis.example.com/portal login user --client-id abc123 --redirect oob"
    )]
    User {
        /// The app's client id.
        #[arg(long, value_name = "ID")]
        client_id: String,
        /// How the sign-in code comes back to arcgis-auth.
        #[arg(long, value_enum, default_value_t = Redirect::Loopback)]
        redirect: Redirect,
        /// The loopback port to listen on (default: any free port).
        #[arg(long, value_name = "N")]
        port: Option<u16>,
        /// Do not open a browser; only print the URL.
        #[arg(long)]
        no_browser: bool,
        /// How long to wait for the browser to come back, in seconds (default 300).
        #[arg(
            long,
            value_name = "SECONDS",
            value_parser = clap::value_parser!(u64).range(1..=86_400),
            long_help = "\
How long to wait for the browser to come back to the loopback listener, in
seconds (default 300, five minutes; at most 86400). When it has not come back
by then, login exits with status 3: start it again. Only for --redirect
loopback."
        )]
        timeout: Option<u64>,
        /// How long the refresh token should live, in minutes.
        #[arg(
            long,
            value_name = "MINUTES",
            allow_negative_numbers = true,
            long_help = "\
How long the refresh token (the session) should live, in minutes (default
20160, two weeks; at most 129600; -1 asks for the maximum). Access tokens
from this flow always live 30 minutes."
        )]
        expiration: Option<i64>,
    },

    /// Sign in with a username and password (generateToken).
    #[command(
        long_about = "\
Sign in with a username and password through the portal's generateToken
endpoint, for built-in accounts where no OAuth app is registered.

The password is read from standard input with --password-stdin, else from the
environment variable ARCGIS_PASSWORD, else from standard input (with a prompt
on standard error when it is a terminal). It is never stored, so the session
cannot be renewed: when its token expires (after 60 minutes unless
--expiration says otherwise), `token` exits with status 3 and you sign in
again.",
        after_help = "\
Examples:
  ARCGIS_PASSWORD=... arcgis-auth login password --username jdoe
  pass show arcgis | arcgis-auth login password --username jdoe --password-stdin"
    )]
    Password {
        /// The user to sign in as.
        #[arg(long, value_name = "USER")]
        username: String,
        /// Read the password from standard input.
        #[arg(long)]
        password_stdin: bool,
        /// Bind the token to this Referer (client=referer).
        #[arg(
            long,
            value_name = "URL",
            long_help = "\
Bind the token to this Referer (generateToken's client=referer): every request
made with it must then send the same Referer header. Without it the token is
bound to the requesting IP address (client=requestip)."
        )]
        referer: Option<String>,
        /// How long the token should live, in minutes.
        #[arg(
            long,
            value_name = "MINUTES",
            long_help = "\
How long the token should live, in minutes (default 60). The server may
grant less."
        )]
        expiration: Option<u32>,
    },
    /// Sign in with a client certificate at the portal's web tier (PKI).
    #[command(
        long_about = "\
Sign in to an Enterprise portal whose web tier asks for a TLS client
certificate (PKI), with --cert and --key (PEM files) or --pkcs12 (a .p12/.pfx
file; its password from ARCGIS_PKCS12_PASSWORD or, with
--pkcs12-password-stdin, standard input). The certificate is offered only to
the portal and to servers federated with it.

The portal token is minted without a password (generateToken with
request=getToken) and bound to --referer (default: the portal's URL); `token`
and `request` mint a new one the same way when it expires, reading the same
files again. The store keeps the files' paths, never the key or a password.
Give the enterprise CA with --ca-cert when it signed the portal's own TLS
certificate.",
        after_help = "\
Examples:
  arcgis-auth --portal https://gis.example.com/portal --ca-cert ca.pem login pki --cert me.pem --key me-key.pem
  ARCGIS_PKCS12_PASSWORD=... arcgis-auth --portal https://gis.example.com/portal login pki --pkcs12 me.p12"
    )]
    Pki {
        #[command(flatten)]
        certificate: CertificateArgs,
        #[command(flatten)]
        options: WebTierLoginArgs,
    },

    /// Sign in as a directory user at the portal's web tier (HTTP Basic).
    #[command(
        long_about = "\
Sign in to an Enterprise portal whose web tier asks for a directory user over
HTTP Basic (LDAP, or Windows users over Basic). The password is read from
standard input with --password-stdin, else from ARCGIS_PASSWORD, else from
standard input (with a prompt on standard error when it is a terminal). It
goes only to the portal and to servers federated with it, over HTTPS (or to
loopback), and is never stored.

The portal token is minted without a password (generateToken with
request=getToken) and bound to --referer (default: the portal's URL). A
refused password is sent once and never retried (directories lock accounts).
When the token expires, `token` mints a new one if ARCGIS_PASSWORD holds the
password again, and exits with status 3 otherwise.",
        after_help = "\
Examples:
  ARCGIS_PASSWORD=... arcgis-auth --portal https://gis.example.com/portal login basic --username 'CORP\\jdoe'
  pass show corp | arcgis-auth --portal https://gis.example.com/portal login basic --username jdoe --password-stdin"
    )]
    Basic {
        /// The directory user (often DOMAIN\user or user@domain).
        #[arg(long, value_name = "USER")]
        username: String,
        /// Read the password from standard input.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        options: WebTierLoginArgs,
    },

    /// Sign in with your Kerberos ticket at the portal's web tier (Negotiate).
    #[cfg(feature = "kerberos")]
    #[command(
        long_about = "\
Sign in to an Enterprise portal whose web tier asks for Windows Integrated
Authentication (Negotiate, Kerberos) with the ticket `kinit` left in your
credential cache (KRB5CCNAME, else the default cache). A fresh token for the
service HTTP/<portal host> goes with every request to the portal and to
servers federated with it, never elsewhere.

The portal token is minted without a password (generateToken with
request=getToken) and bound to --referer (default: the portal's URL); `token`
and `request` mint a new one the same way while the ticket lasts (run `kinit`
again when it expires). The store keeps the principal's name only.",
        after_help = "\
Examples:
  kinit jdoe@EXAMPLE.COM && arcgis-auth --portal https://gis.example.com/portal login kerberos"
    )]
    Kerberos {
        #[command(flatten)]
        options: WebTierLoginArgs,
    },
}

/// The options every web-tier login (`pki`, `basic`, `kerberos`) shares.
#[derive(Debug, Clone, Args)]
pub(crate) struct WebTierLoginArgs {
    /// Bind the token to this Referer (default: the portal's URL).
    #[arg(long, value_name = "URL")]
    pub(crate) referer: Option<String>,
    /// How long the token should live, in minutes.
    #[arg(
        long,
        value_name = "MINUTES",
        long_help = "\
How long the token should live, in minutes (default 60). The portal may
grant less."
    )]
    pub(crate) expiration: Option<u32>,
}

/// Where the client certificate of `login pki` comes from.
#[derive(Debug, Clone, Args)]
#[group(required = true, multiple = true)]
pub(crate) struct CertificateArgs {
    /// The certificate (PEM), with --key.
    #[arg(long, value_name = "PEM", requires = "key", conflicts_with = "pkcs12")]
    pub(crate) cert: Option<std::path::PathBuf>,
    /// The certificate's private key (PEM: PKCS#8, SEC1 or PKCS#1, not encrypted).
    #[arg(long, value_name = "PEM", requires = "cert", conflicts_with = "pkcs12")]
    pub(crate) key: Option<std::path::PathBuf>,
    /// A PKCS#12 (.p12/.pfx) file holding the certificate and its key.
    #[arg(long, value_name = "FILE")]
    pub(crate) pkcs12: Option<std::path::PathBuf>,
    /// Read the PKCS#12 password from the first line of standard input.
    #[arg(long, requires = "pkcs12")]
    pub(crate) pkcs12_password_stdin: bool,
}

/// Where a client secret comes from.
#[derive(Debug, Clone, Args)]
pub(crate) struct SecretArgs {
    /// Read the client secret from this environment variable.
    #[arg(
        long,
        value_name = "VAR",
        default_value = "ARCGIS_CLIENT_SECRET",
        conflicts_with = "client_secret_stdin",
        long_help = "\
Read the client secret of an app from the environment variable VAR (default
ARCGIS_CLIENT_SECRET). Used to sign an app in, and to sign it in again when
its token expires."
    )]
    pub(crate) client_secret_env: String,
    /// Read the client secret from the first line of standard input.
    #[arg(long)]
    pub(crate) client_secret_stdin: bool,
}

/// `--redirect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Redirect {
    /// Listen on 127.0.0.1 for the browser to come back.
    Loopback,
    /// Read the code the portal shows from standard input.
    Oob,
}

/// `--method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Method {
    /// Parameters in the query string.
    #[value(name = "GET", alias = "get")]
    Get,
    /// Parameters in a form body.
    #[value(name = "POST", alias = "post")]
    Post,
}

fn parse_key_value(input: &str) -> Result<(String, String), String> {
    match input.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("`{input}` is not KEY=VALUE")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn key_values_split_at_the_first_equals_sign() {
        assert_eq!(
            parse_key_value("where=1=1").unwrap(),
            ("where".to_owned(), "1=1".to_owned())
        );
        assert_eq!(
            parse_key_value("empty=").unwrap(),
            ("empty".to_owned(), String::new())
        );
        assert!(parse_key_value("=x").is_err());
        assert!(parse_key_value("novalue").is_err());
    }

    #[test]
    fn global_options_come_before_the_command() {
        let cli = Cli::try_parse_from([
            "arcgis-auth",
            "--portal",
            "http://127.0.0.1:8080/sharing/rest",
            "--store",
            "memory",
            "--profile",
            "ci",
            "token",
            "--json",
        ])
        .unwrap();
        assert_eq!(cli.profile, "ci");
        assert!(matches!(cli.store, Some(StoreSpec::Memory)));
        assert!(matches!(cli.command, Command::Token { json: true, .. }));
    }

    #[test]
    fn secret_sources_exclude_each_other() {
        let err = Cli::try_parse_from([
            "arcgis-auth",
            "login",
            "app",
            "--client-id",
            "x",
            "--client-secret-env",
            "S",
            "--client-secret-stdin",
        ])
        .unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }
}
