//! Property tests over the sign-in strategies' parsers of what comes back
//! from the portal through the user's browser or clipboard: code-flow
//! callbacks (URL or query), implicit-grant fragments, and pasted
//! out-of-band codes. None may panic on any input; a code or token is only
//! ever returned with the state the sign-in sent; well-formed inputs give
//! back exactly what they carry.
#![allow(clippy::unwrap_used, deprecated)] // ImplicitCallback is deprecated (the flow is)

use arcgis_auth_core::{AuthorizeOptions, ExposeSecret, HttpClient, Portal};
use arcgis_auth_flows::signin::PendingSignIn;
use arcgis_auth_flows::signin::UserSignIn;
use arcgis_auth_flows::signin::{ImplicitCallback, code_from_pasted};
use proptest::prelude::*;

/// One pending sign-in for all cases (building an HTTP client is slow).
fn pending() -> &'static PendingSignIn {
    static PENDING: std::sync::OnceLock<PendingSignIn> = std::sync::OnceLock::new();
    PENDING.get_or_init(|| {
        let user = UserSignIn::new(
            Portal::arcgis_online(),
            "client-id",
            HttpClient::new().unwrap(),
        );
        user.begin("http://127.0.0.1:8765/callback", &AuthorizeOptions::new())
            .unwrap()
    })
}

fn encode(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// Callback-ish text: URL shapes with odd separators, and anything at all.
fn callback_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("?".to_owned()),
        Just("#".to_owned()),
        Just("&".to_owned()),
        Just("=".to_owned()),
        Just("code=".to_owned()),
        Just("state=".to_owned()),
        Just("error=access_denied".to_owned()),
        Just("access_token=".to_owned()),
        Just("expires_in=".to_owned()),
        Just("http://127.0.0.1:8765/callback".to_owned()),
        Just("%".to_owned()),
        Just("%zz".to_owned()),
        ".{0,8}",
    ];
    prop::collection::vec(piece, 0..12).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn callbacks_never_panic_and_need_the_state(text in callback_text()) {
        let pending = pending();
        if pending.code_from_callback(&text).is_ok() {
            prop_assert!(text.contains(pending.state()), "accepted without the state: {}", text);
        }
        if let Ok(callback) = ImplicitCallback::parse(&text, pending.state()) {
            prop_assert!(text.contains(pending.state()), "accepted without the state: {}", text);
            prop_assert!(callback.expires_in().as_secs() > 0);
        }
        let _ = code_from_pasted(&text);
    }

    /// A genuine callback gives back its code, as a URL or as a bare query,
    /// whatever else the app's redirect URI carries.
    #[test]
    fn callback_codes_round_trip(code in "[!-~]{1,64}", app_param in "[a-z]{1,8}") {
        let pending = pending();
        let query = encode(&[(&app_param, "1"), ("code", &code), ("state", pending.state())]);
        for callback in [
            format!("http://127.0.0.1:8765/callback?{query}"),
            format!("?{query}"),
            query.clone(),
        ] {
            let got = pending.code_from_callback(&callback);
            if app_param == "code" || app_param == "state" {
                continue; // the app's own parameter collides with ours
            }
            let got = got.unwrap();
            prop_assert_eq!(got.expose_secret(), code.as_str(), "{}", callback);
        }
    }

    #[test]
    fn implicit_fragments_round_trip(
        token in "[!-~]{1,64}",
        expires_in in 1u64..=1_209_600,
        username in "[a-zA-Z0-9._-]{1,20}",
        ssl in any::<bool>(),
    ) {
        let state = "the-state";
        let fragment = encode(&[
            ("access_token", &token),
            ("expires_in", &expires_in.to_string()),
            ("username", &username),
            ("ssl", if ssl { "true" } else { "false" }),
            ("state", state),
        ]);
        let parsed = ImplicitCallback::parse(&format!("http://127.0.0.1/cb#{fragment}"), state).unwrap();
        prop_assert_eq!(parsed.expires_in().as_secs(), expires_in);
        prop_assert_eq!(parsed.username(), Some(username.as_str()));
        prop_assert_eq!(parsed.ssl(), ssl);
        let wrong = ImplicitCallback::parse(&format!("#{fragment}"), "another-state");
        prop_assert!(wrong.is_err());
    }

    #[test]
    fn pasted_codes_round_trip(code in "[A-Za-z0-9_-]{1,64}") {
        for pasted in [
            code.clone(),
            format!("  code={code}\n"),
            format!("SUCCESS code={code}"),
            format!("<html><head><title>SUCCESS code={code}</title></head></html>"),
        ] {
            let got = code_from_pasted(&pasted).unwrap();
            prop_assert_eq!(got.expose_secret(), code.as_str(), "{}", pasted);
        }
    }
}
