//! `--store SPEC`: which session store to use, and opening it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use arcgis_auth_storage::{FileStore, MemoryStore, RedisStore, SessionStore};

use crate::exit::CliError;

/// The file name of the default store, in the config directory.
const DEFAULT_FILE: &str = "sessions.json";
/// The directory under the config directory.
const APP_DIR: &str = "arcgis-auth";

/// A parsed `--store` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StoreSpec {
    /// `file:PATH`: a JSON file.
    File(PathBuf),
    /// `memory`: this process only.
    Memory,
    /// `redis://HOST:PORT[/DB]`, or `rediss://…` for TLS: a Redis server (the URL as given).
    Redis(String),
}

impl FromStr for StoreSpec {
    type Err = String;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        if input == "memory" {
            return Ok(StoreSpec::Memory);
        }
        if let Some(path) = input.strip_prefix("file:") {
            if path.is_empty() {
                return Err(
                    "`file:` needs a path: use file:PATH, as in file:/path/to/sessions.json".into(),
                );
            }
            return Ok(StoreSpec::File(PathBuf::from(path)));
        }
        if input.starts_with("redis://") || input.starts_with("rediss://") {
            return parse_redis(input).map(|()| StoreSpec::Redis(input.to_owned()));
        }
        Err(format!(
            "`{input}` is not a store: use file:PATH, memory, or redis://HOST:PORT[/DB]"
        ))
    }
}

/// Checks `redis://HOST:PORT[/DB]` (and optional `user:password@`).
fn parse_redis(input: &str) -> Result<(), String> {
    let bad =
        |why: &str| format!("`{input}` is not a Redis URL ({why}): use redis://HOST:PORT[/DB]");
    let url = url::Url::parse(input).map_err(|e| bad(&e.to_string()))?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("no host"));
    }
    let db = url.path().trim_start_matches('/');
    if !db.is_empty() && db.parse::<u32>().is_err() {
        return Err(bad("the database must be a number"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("no query or fragment is allowed"));
    }
    Ok(())
}

impl fmt::Display for StoreSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreSpec::File(path) => write!(f, "file:{}", path.display()),
            StoreSpec::Memory => f.write_str("memory"),
            // Never print a password that may be in the URL.
            StoreSpec::Redis(url) => match url::Url::parse(url) {
                Ok(mut u) if u.password().is_some() => {
                    let _ = u.set_password(Some("***"));
                    write!(f, "{u}")
                }
                _ => f.write_str(url),
            },
        }
    }
}

impl StoreSpec {
    /// The store to use when `--store` and `ARCGIS_AUTH_STORE` are not given:
    /// `sessions.json` in `$XDG_CONFIG_HOME/arcgis-auth/` (when that is an
    /// absolute path, as the XDG spec asks) or `~/.config/arcgis-auth/`.
    pub(crate) fn default_file(
        xdg_config_home: Option<&str>,
        home: Option<&str>,
    ) -> Result<StoreSpec, CliError> {
        let config = match (xdg_config_home, home) {
            (Some(xdg), _) if Path::new(xdg).is_absolute() => PathBuf::from(xdg),
            (_, Some(home)) if !home.is_empty() => Path::new(home).join(".config"),
            _ => {
                return Err(CliError::usage(
                    "no config directory (neither XDG_CONFIG_HOME nor HOME is set): pass \
                     --store file:PATH",
                ));
            }
        };
        Ok(StoreSpec::File(config.join(APP_DIR).join(DEFAULT_FILE)))
    }

    /// The default store for this process's environment.
    pub(crate) fn from_environment() -> Result<StoreSpec, CliError> {
        let xdg = std::env::var("XDG_CONFIG_HOME").ok();
        let home = std::env::var("HOME").ok();
        StoreSpec::default_file(xdg.as_deref(), home.as_deref())
    }

    /// Opens the store. Files are created on the first save (mode 0600, the
    /// directory 0700); Redis is connected to at once, over `rediss://`
    /// trusting the PEM bundle `ca_cert` (`--ca-cert`) on top of the
    /// system's roots. A plain `redis://` store ignores the bundle, which is
    /// then the portal's only.
    pub(crate) async fn open(
        &self,
        ca_cert: Option<&[u8]>,
    ) -> Result<Arc<dyn SessionStore>, CliError> {
        Ok(match self {
            StoreSpec::File(path) => Arc::new(FileStore::new(path.clone())?),
            StoreSpec::Memory => Arc::new(MemoryStore::new()),
            // A short-lived process needs no subscription to others' changes:
            // the token manager polls the store while another process renews.
            StoreSpec::Redis(url) => {
                let mut builder = RedisStore::builder(url.clone()).remote_events(false);
                if let Some(pem) = ca_cert.filter(|_| url.starts_with("rediss://")) {
                    builder = builder.root_certificates(pem);
                }
                Arc::new(builder.connect().await?)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse() {
        assert_eq!("memory".parse(), Ok(StoreSpec::Memory));
        assert_eq!(
            "file:/tmp/s.json".parse(),
            Ok(StoreSpec::File(PathBuf::from("/tmp/s.json")))
        );
        assert_eq!(
            "file:relative/s.json".parse(),
            Ok(StoreSpec::File(PathBuf::from("relative/s.json")))
        );
        assert_eq!(
            "redis://127.0.0.1:6379".parse(),
            Ok(StoreSpec::Redis("redis://127.0.0.1:6379".into()))
        );
        assert_eq!(
            "redis://cache.internal:6380/2".parse(),
            Ok(StoreSpec::Redis("redis://cache.internal:6380/2".into()))
        );
        assert_eq!(
            "rediss://:pw@cache.example.net:6380/0".parse(),
            Ok(StoreSpec::Redis(
                "rediss://:pw@cache.example.net:6380/0".into()
            ))
        );
    }

    #[test]
    fn bad_specs_say_what_is_accepted() {
        for bad in [
            "",
            "file:",
            "mem",
            "/tmp/s.json",
            "redis://",
            "redis://host:1/db",
            "redis://host:1/0?x=1",
            "rediss://host:1/#insecure",
            "https://example.com",
        ] {
            let err = bad.parse::<StoreSpec>().unwrap_err();
            assert!(
                err.contains("file:PATH") || err.contains("redis://HOST:PORT"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn redis_passwords_are_not_displayed() {
        let spec: StoreSpec = "redis://user:hunter2@host:6379/0".parse().unwrap();
        let shown = spec.to_string();
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("host:6379"), "{shown}");
    }

    #[test]
    fn the_default_file_follows_xdg() {
        let spec = StoreSpec::default_file(Some("/xdg"), Some("/home/u")).unwrap();
        assert_eq!(
            spec,
            StoreSpec::File(PathBuf::from("/xdg/arcgis-auth/sessions.json"))
        );
        // A relative XDG_CONFIG_HOME is ignored, as the spec says.
        let spec = StoreSpec::default_file(Some("rel"), Some("/home/u")).unwrap();
        assert_eq!(
            spec,
            StoreSpec::File(PathBuf::from("/home/u/.config/arcgis-auth/sessions.json"))
        );
        let spec = StoreSpec::default_file(None, Some("/home/u")).unwrap();
        assert_eq!(
            spec,
            StoreSpec::File(PathBuf::from("/home/u/.config/arcgis-auth/sessions.json"))
        );
        let err = StoreSpec::default_file(None, None).unwrap_err();
        assert_eq!(err.code(), crate::exit::USAGE);
    }
}
