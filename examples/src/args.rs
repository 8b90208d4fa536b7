//! The examples' few command-line options, without a parser dependency.
//!
//! Options are `--name value` or `--name=value`; flags are `--name`.
//! Secrets (client secrets, passwords) are never options: a command line is
//! visible to every user of the machine (`ps`). They come from environment
//! variables instead ([`secret_from_env`]).

use std::collections::BTreeMap;

use arcgis_auth_core::SecretString;

use crate::BoxError;

/// Parsed `--name value` options and `--flag`s.
#[derive(Debug, Clone, Default)]
pub struct Args {
    values: BTreeMap<String, String>,
    flags: Vec<String>,
}

impl Args {
    /// Parses the process's arguments: `options` take a value, `flags` do not.
    ///
    /// `--help` prints `usage` and exits.
    pub fn from_env(usage: &str, options: &[&str], flags: &[&str]) -> Result<Args, BoxError> {
        let args: Vec<String> = std::env::args().skip(1).collect();
        if args.iter().any(|a| a == "--help" || a == "-h") {
            println!("{usage}");
            std::process::exit(0);
        }
        Args::parse(args, options, flags).map_err(|e| format!("{e}\n\n{usage}").into())
    }

    /// Parses `args` (without the program name).
    pub fn parse(args: Vec<String>, options: &[&str], flags: &[&str]) -> Result<Args, String> {
        let mut parsed = Args::default();
        let mut iter = args.into_iter();
        while let Some(arg) = iter.next() {
            let Some(name) = arg.strip_prefix("--") else {
                return Err(format!(
                    "unexpected argument `{arg}`: options look like --name value"
                ));
            };
            let bare = name.split_once('=').map_or(name, |(n, _)| n);
            if !options.contains(&bare) && !flags.contains(&bare) {
                return Err(format!("unknown option --{bare} (see --help)"));
            }
            if let Some((name, value)) = name.split_once('=') {
                parsed.values.insert(name.to_owned(), value.to_owned());
            } else if flags.contains(&name) {
                parsed.flags.push(name.to_owned());
            } else {
                let value = iter
                    .next()
                    .ok_or_else(|| format!("--{name} needs a value"))?;
                parsed.values.insert(name.to_owned(), value);
            }
        }
        Ok(parsed)
    }

    /// The value of `--name`, if given.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Whether the flag `--name` was given.
    pub fn flag(&self, name: &str) -> bool {
        self.flags.iter().any(|f| f == name)
    }
}

/// A secret from the environment variable `var`, if set and not empty.
pub fn secret_from_env(var: &str) -> Option<SecretString> {
    std::env::var(var)
        .ok()
        .filter(|v| !v.is_empty())
        .map(SecretString::from)
}

/// A secret from `var`, or an error saying how to provide it.
pub fn require_secret(var: &str, what: &str) -> Result<SecretString, BoxError> {
    secret_from_env(var).ok_or_else(|| {
        format!(
            "set {var} to the {what} (it is read from the environment so it never shows in `ps`)"
        )
        .into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, String> {
        Args::parse(
            args.iter().map(|s| s.to_string()).collect(),
            &["portal", "client-id"],
            &["serve"],
        )
    }

    #[test]
    fn values_and_flags() {
        let a = parse(&["--portal", "https://x", "--client-id=abc", "--serve"]).unwrap();
        assert_eq!(a.value("portal"), Some("https://x"));
        assert_eq!(a.value("client-id"), Some("abc"));
        assert!(a.flag("serve"));
        assert!(!a.flag("other"));
    }

    #[test]
    fn mistakes_are_explained() {
        assert!(parse(&["--portal"]).unwrap_err().contains("needs a value"));
        assert!(parse(&["portal"]).unwrap_err().contains("unexpected"));
        assert!(
            parse(&["--bogus"])
                .unwrap_err()
                .contains("unknown option --bogus")
        );
        assert!(
            parse(&["--bogus=1"])
                .unwrap_err()
                .contains("unknown option --bogus")
        );
    }
}
