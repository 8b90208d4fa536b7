//! The guides: one page per way to sign in, and how the token manager works.
//!
//! | guide | for |
//! |---|---|
//! | [`user_sign_in`] | a person signs in (authorization code + PKCE): web apps, CLIs, desktop apps |
//! | [`loopback`] | the loopback listener of CLIs and desktop apps |
//! | [`out_of_band`] | apps that cannot receive a redirect |
//! | [`app_credentials`] | a server acting as the app itself (client credentials) |
//! | [`generate_token`] | scripts with a username and password (`generateToken`) |
//! | [`enterprise`] | Enterprise portals behind a web tier: PKI client certificates, LDAP over HTTP Basic |
//! | [`api_keys`] | developer API keys |
//! | [`implicit`] | apps migrating off the implicit grant |
//! | [`token_manager`] | when tokens are renewed, by whom, and what callers see meanwhile |
//!
//! Where a token may go, and what happens on a 498, is the page of the
//! [`crate::middleware`] module.
//!
//! These modules hold no items: each is a page.

// The guides' links name items as the crate root and `signin` show them.
#[allow(unused_imports)]
use crate::signin::*;
#[allow(unused_imports)]
use crate::*;

#[doc = include_str!("../docs/user-sign-in.md")]
pub mod user_sign_in {
    #[allow(unused_imports)]
    use super::*;
}

#[doc = include_str!("../docs/loopback.md")]
pub mod loopback {
    #[allow(unused_imports)]
    use super::*;
}

#[doc = include_str!("../docs/out-of-band.md")]
pub mod out_of_band {
    #[allow(unused_imports)]
    use super::*;
}

#[doc = include_str!("../docs/app-credentials.md")]
pub mod app_credentials {
    #[allow(unused_imports)]
    use super::*;
}

#[doc = include_str!("../docs/generate-token.md")]
pub mod generate_token {
    #[allow(unused_imports)]
    use super::*;
}

#[doc = include_str!("../docs/enterprise.md")]
// Kerberos items exist with the `kerberos` feature only: without it the guide
// links to their published pages, so the guide builds in every feature set.
#[cfg_attr(
    feature = "kerberos",
    doc = "",
    doc = "[kerberos-credential]: arcgis_auth_core::KerberosCredential",
    doc = "[kerberos-from-default-cache]: arcgis_auth_core::KerberosCredential::from_default_cache"
)]
#[cfg_attr(
    not(feature = "kerberos"),
    doc = "",
    doc = "[kerberos-credential]: <https://docs.rs/arcgis-auth-core/latest/arcgis_auth_core/struct.KerberosCredential.html>",
    doc = "[kerberos-from-default-cache]: <https://docs.rs/arcgis-auth-core/latest/arcgis_auth_core/struct.KerberosCredential.html#method.from_default_cache>"
)]
pub mod enterprise {
    #[allow(unused_imports)]
    use super::*;
}

#[doc = include_str!("../docs/api-keys.md")]
pub mod api_keys {
    #[allow(unused_imports)]
    use super::*;
}

#[doc = include_str!("../docs/implicit.md")]
pub mod implicit {
    #[allow(unused_imports)]
    use super::*;
}

#[doc = include_str!("../docs/token-manager.md")]
pub mod token_manager {
    #[allow(unused_imports)]
    use super::*;
}
