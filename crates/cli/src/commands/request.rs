//! `request URL [--method GET|POST] [--data KEY=VALUE]...`: an ArcGIS call
//! through the library's middleware.

use std::io::Read;

use arcgis_auth_core::classify_response;
use arcgis_auth_flows::middleware::{ArcGisAuth, flow_error};
use arcgis_auth_flows::routing::TokenRouting;
use arcgis_auth_storage::SessionKind;
use reqwest::header::{CONTENT_TYPE, HeaderValue};
use url::Url;

use super::Context;
use crate::cli::{Method, SecretArgs};
use crate::exit::{CliError, NETWORK, USAGE};
use crate::output::result;

pub(super) async fn run(
    ctx: &Context,
    mut url: Url,
    method: Method,
    data: Vec<(String, String)>,
    secret: &SecretArgs,
) -> Result<(), CliError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(CliError::usage(format!(
            "`{url}` is not an http(s) URL: give the full URL of an ArcGIS resource"
        )));
    }
    let mut params = data
        .into_iter()
        .map(|(k, v)| Ok((k, read_value(v)?)))
        .collect::<Result<Vec<_>, CliError>>()?;
    let has_f = params.iter().any(|(k, _)| k == "f") || url.query_pairs().any(|(k, _)| k == "f");
    if !has_f {
        params.push(("f".to_owned(), "json".to_owned()));
    }

    let (manager, record) = ctx.manager(secret).await?;
    let routing = TokenRouting::new(record.portal.clone());
    // A web-tier session: the credential goes with the token to the portal
    // and its federated servers.
    let http = ctx
        .web_tier_http(&record)?
        .unwrap_or_else(|| ctx.http.clone());
    let client = ArcGisAuth::new(manager, routing, http).into_client()?;
    // A token bound to a referer works only with it.
    let referer = record
        .referer
        .as_deref()
        .filter(|_| record.kind == SessionKind::WebTier)
        .and_then(|r| HeaderValue::from_str(r).ok());
    let request = match method {
        Method::Get => {
            url.query_pairs_mut().extend_pairs(&params);
            client.get(url)
        }
        Method::Post => {
            let body = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&params)
                .finish();
            client
                .post(url)
                .header(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/x-www-form-urlencoded"),
                )
                .body(body)
        }
    };
    let request = match referer {
        Some(referer) => request.header(reqwest::header::REFERER, referer),
        None => request,
    };
    let response = request.send().await.map_err(|err| match flow_error(&err) {
        Some(flow) => ctx.token_error(flow.clone(), &record, secret),
        None => CliError::new(
            NETWORK,
            format!(
                "the request failed ({}): check the URL and the network",
                without_url(err)
            ),
        ),
    })?;
    let (status, headers) = (response.status(), response.headers().clone());
    let body = response.bytes().await.map_err(|e| {
        CliError::new(
            NETWORK,
            format!("reading the answer failed ({}): try again", e.without_url()),
        )
    })?;
    // ArcGIS errors often come inside HTTP 200 answers; downloads (images,
    // files) with a 2xx status pass as they are.
    let content_type = headers.get(CONTENT_TYPE).map(HeaderValue::to_str);
    classify_response(status, content_type.and_then(Result::ok), &body)
        .map_err(|err| CliError::from(err).context("the resource answered with an error"))?;
    result(&body)
}

/// A `--data` value: `@FILE` reads the file, `@-` standard input.
fn read_value(value: String) -> Result<String, CliError> {
    let Some(path) = value.strip_prefix('@') else {
        return Ok(value);
    };
    let mut text = String::new();
    let read = if path == "-" {
        std::io::stdin().read_to_string(&mut text)
    } else {
        std::fs::File::open(path).and_then(|mut f| f.read_to_string(&mut text))
    };
    read.map_err(|e| CliError::new(USAGE, format!("--data @{path}: cannot read it ({e})")))?;
    Ok(text)
}

/// A transport error's text without its URL (which may carry parameters).
fn without_url(err: reqwest_middleware::Error) -> String {
    match err {
        reqwest_middleware::Error::Reqwest(e) => e.without_url().to_string(),
        other => other.to_string(),
    }
}
