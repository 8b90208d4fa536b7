//! Putting a token on a request: a header or a form field, never the URL query.

use arcgis_auth_core::ExposeSecret;
use http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderName, HeaderValue, Method};
use reqwest::{Body, Request};

use crate::access::AccessToken;
use crate::error::{FlowError, FlowErrorKind};
use crate::routing::TokenTransport;

/// `X-Esri-Authorization`.
pub(crate) static X_ESRI_AUTHORIZATION: HeaderName =
    HeaderName::from_static("x-esri-authorization");

const FORM: &str = "application/x-www-form-urlencoded";

/// Turns a GET into a form POST carrying its query in the body, when the
/// transport needs a body or the URL is longer than `max_url_length`.
pub(crate) fn maybe_post(
    request: &mut Request,
    transport: TokenTransport,
    max_url_length: Option<usize>,
) {
    if request.method() != Method::GET || request.body().is_some() {
        return;
    }
    let too_long = max_url_length.is_some_and(|max| request.url().as_str().len() > max);
    if transport != TokenTransport::FormBody && !too_long {
        return;
    }
    let query = request.url().query().unwrap_or_default().to_owned();
    request.url_mut().set_query(None);
    *request.method_mut() = Method::POST;
    request
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(FORM));
    request.headers_mut().remove(CONTENT_LENGTH);
    *request.body_mut() = Some(Body::from(query));
}

/// Attaches `token` as `transport` says. A form field is only possible on a
/// form-encoded body held in memory; anything else gets the
/// `X-Esri-Authorization` header instead.
pub(crate) fn attach(
    request: &mut Request,
    token: &AccessToken,
    transport: TokenTransport,
) -> Result<(), FlowError> {
    if transport == TokenTransport::FormBody && is_form(request) {
        let body = request
            .body()
            .and_then(Body::as_bytes)
            .map(<[u8]>::to_vec)
            .unwrap_or_default();
        let mut out = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in url::form_urlencoded::parse(&body) {
            // A caller's own `token` field would be sent twice: ours wins.
            if k != "token" {
                out.append_pair(&k, &v);
            }
        }
        out.append_pair("token", token.secret().expose_secret());
        request.headers_mut().remove(CONTENT_LENGTH);
        *request.body_mut() = Some(Body::from(out.finish()));
        return Ok(());
    }
    let (name, value) = match transport {
        TokenTransport::AuthorizationHeader => (AUTHORIZATION, bearer(token)?),
        _ => (X_ESRI_AUTHORIZATION.clone(), bearer(token)?),
    };
    request.headers_mut().insert(name, value);
    Ok(())
}

fn is_form(request: &Request) -> bool {
    request.method() == Method::POST
        && request.body().and_then(Body::as_bytes).is_some()
        && request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| {
                ct.split(';')
                    .next()
                    .is_some_and(|m| m.trim().eq_ignore_ascii_case(FORM))
            })
}

fn bearer(token: &AccessToken) -> Result<HeaderValue, FlowError> {
    // Built once per token and shared by every request that carries it.
    token.bearer_header().ok_or_else(|| {
        FlowError::new(
            FlowErrorKind::InvalidInput,
            "the token contains characters that cannot go in an HTTP header: sign in again",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arcgis_auth_core::{Timestamp, Token};

    fn token() -> AccessToken {
        AccessToken::new(Token::new("T0K".into(), Timestamp::MAX))
    }

    fn get(url: &str) -> Request {
        Request::new(Method::GET, url.parse().unwrap())
    }

    #[test]
    fn headers() {
        let mut r = get("https://h.example/a?f=json");
        attach(&mut r, &token(), TokenTransport::EsriHeader).unwrap();
        assert_eq!(r.headers()["x-esri-authorization"], "Bearer T0K");
        assert!(r.headers()["x-esri-authorization"].is_sensitive());
        assert_eq!(r.url().as_str(), "https://h.example/a?f=json");

        let mut r = get("https://h.example/a?f=json");
        attach(&mut r, &token(), TokenTransport::AuthorizationHeader).unwrap();
        assert_eq!(r.headers()["authorization"], "Bearer T0K");
    }

    #[test]
    fn form_body_turns_get_into_post() {
        let mut r = get("https://h.example/a?f=json&where=1%3D1");
        maybe_post(&mut r, TokenTransport::FormBody, Some(2000));
        attach(&mut r, &token(), TokenTransport::FormBody).unwrap();
        assert_eq!(r.method(), Method::POST);
        assert_eq!(r.url().query(), None);
        let body = r.body().and_then(Body::as_bytes).unwrap();
        assert_eq!(body, b"f=json&where=1%3D1&token=T0K");
        assert!(r.headers().get("x-esri-authorization").is_none());
    }

    #[test]
    fn long_gets_become_posts_short_ones_do_not() {
        let long = format!("https://h.example/a?where={}", "x".repeat(2100));
        let mut r = get(&long);
        maybe_post(&mut r, TokenTransport::EsriHeader, Some(2000));
        assert_eq!(r.method(), Method::POST);
        let mut r = get(&long);
        maybe_post(&mut r, TokenTransport::EsriHeader, None);
        assert_eq!(r.method(), Method::GET);
        let mut r = get("https://h.example/a?f=json");
        maybe_post(&mut r, TokenTransport::EsriHeader, Some(2000));
        assert_eq!(r.method(), Method::GET);
    }

    #[test]
    fn a_callers_token_field_is_replaced_and_other_bodies_get_the_header() {
        let mut r = Request::new(Method::POST, "https://h.example/a".parse().unwrap());
        r.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"),
        );
        *r.body_mut() = Some(Body::from("f=json&token=old"));
        attach(&mut r, &token(), TokenTransport::FormBody).unwrap();
        assert_eq!(
            r.body().and_then(Body::as_bytes).unwrap(),
            b"f=json&token=T0K"
        );

        let mut r = Request::new(Method::POST, "https://h.example/a".parse().unwrap());
        r.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        *r.body_mut() = Some(Body::from("{}"));
        attach(&mut r, &token(), TokenTransport::FormBody).unwrap();
        assert_eq!(r.body().and_then(Body::as_bytes).unwrap(), b"{}");
        assert_eq!(r.headers()["x-esri-authorization"], "Bearer T0K");
    }
}
