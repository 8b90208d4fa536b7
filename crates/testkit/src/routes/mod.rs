//! The wiremock responders: one for the portal, one per server, and the
//! matcher that turns an injected [`Failure::ConnectionReset`] into a dropped
//! connection.

mod authorize;
mod generate;
mod resources;
mod server;
mod token;

use std::io;

use wiremock::{Match, Request, Respond, ResponseTemplate};

use crate::calls::{Endpoint, Grant};
use crate::failure::Failure;
use crate::state::{Shared, State, lock};
use crate::web_tier::{self, Verdict};
use crate::wire::{self, Params};

/// Which side of the fake a responder serves.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Site {
    /// The portal.
    Portal,
    /// The server at this index in `State::servers`.
    Server(usize),
}

/// What a request is, as far as routing, counting and failures go.
struct Classified {
    endpoint: Endpoint,
    /// The server's name (`None` on the portal).
    server: Option<String>,
    /// The rest of the path after the endpoint's prefix (content item id, service path).
    rest: String,
}

fn classify(state: &State, site: Site, request: &Request) -> Classified {
    let path = request.url.path();
    match site {
        Site::Portal => {
            if let Some(rest) = path
                .strip_prefix(state.settings.hosted_services_path.as_str())
                .filter(|r| r.is_empty() || r.starts_with('/'))
            {
                return Classified {
                    endpoint: Endpoint::HostedServices,
                    server: None,
                    rest: rest.trim_matches('/').to_owned(),
                };
            }
            let rest = path
                .strip_prefix(state.settings.sharing_path.as_str())
                .filter(|r| r.is_empty() || r.starts_with('/'));
            let endpoint = rest.map_or(Endpoint::Unknown, Endpoint::from_portal_path);
            let rest = rest
                .map(|r| r.trim_matches('/'))
                .and_then(|r| r.strip_prefix("content/items/"))
                .unwrap_or_default()
                .to_owned();
            Classified {
                endpoint,
                server: None,
                rest,
            }
        }
        Site::Server(i) => {
            let Some(s) = state.servers.get(i) else {
                return Classified {
                    endpoint: Endpoint::Unknown,
                    server: None,
                    rest: String::new(),
                };
            };
            let prefix = format!("/{}/", s.name);
            let rest = path.strip_prefix(prefix.as_str()).unwrap_or_default();
            let trimmed = rest.trim_end_matches('/');
            let endpoint = if trimmed == "rest/info" {
                Endpoint::ServerInfo
            } else if trimmed == "rest/services" || trimmed.starts_with("rest/services/") {
                Endpoint::ServerServices
            } else if trimmed == "tokens/generateToken" {
                Endpoint::ServerGenerateToken
            } else if trimmed == "admin/generateToken" {
                Endpoint::ServerAdminGenerateToken
            } else if trimmed == "admin" || trimmed.starts_with("admin/") {
                Endpoint::ServerAdmin
            } else {
                Endpoint::Unknown
            };
            Classified {
                endpoint,
                server: Some(s.name.clone()),
                rest: format!("/{trimmed}"),
            }
        }
    }
}

/// Answers every request to one site from the shared state.
pub(crate) struct Responder {
    pub(crate) state: Shared,
    pub(crate) site: Site,
}

impl Respond for Responder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut state = lock(&self.state);
        let c = classify(&state, self.site, request);
        let tier = state.settings.web_tier.as_ref();
        let open = tier.is_some_and(|t| t.open_server_info)
            && matches!(self.site, Site::Server(_))
            && c.endpoint == Endpoint::ServerInfo;
        let web_user = match web_tier::check(tier, open, request) {
            Verdict::Pass(user) => user,
            Verdict::Refused(answer) => {
                state.web_tier_refusals += 1;
                return answer;
            }
        };
        let params = Params::of(request);
        count(&mut state, &c, &params);
        let web_user = web_user.as_deref();
        match state.take_failure(c.server.as_deref(), c.endpoint) {
            None => route(&mut state, &c, &params, request, web_user),
            Some(Failure::Slow(delay)) => {
                route(&mut state, &c, &params, request, web_user).set_delay(delay)
            }
            Some(failure) => failed(&failure),
        }
    }
}

/// Counts a request that reached the fake (whatever happens to it next).
fn count(state: &mut State, c: &Classified, params: &Params) {
    let grant = (c.endpoint == Endpoint::Token).then(|| Grant::from_wire(params.get("grant_type")));
    state.calls.record(
        c.server.as_deref(),
        c.endpoint,
        grant,
        params.secret_in_query(),
    );
}

fn route(
    state: &mut State,
    c: &Classified,
    params: &Params,
    request: &Request,
    web_user: Option<&str>,
) -> ResponseTemplate {
    let post = request.method == http::Method::POST;
    match c.endpoint {
        Endpoint::Authorize => authorize::authorize(state, params),
        Endpoint::SignIn if post => authorize::sign_in(state, params),
        Endpoint::Approval => authorize::approval(state, params),
        Endpoint::Token if post => token::token(state, params),
        Endpoint::RevokeToken if post => resources::revoke(state, params),
        Endpoint::GenerateToken if post => {
            generate::portal_generate(state, params, request, web_user)
        }
        Endpoint::ServerGenerateToken if post => {
            generate::server_generate(state, c.server.as_deref(), params, false)
        }
        Endpoint::ServerAdminGenerateToken if post => {
            generate::server_generate(state, c.server.as_deref(), params, true)
        }
        Endpoint::SignIn
        | Endpoint::Token
        | Endpoint::RevokeToken
        | Endpoint::GenerateToken
        | Endpoint::ServerGenerateToken
        | Endpoint::ServerAdminGenerateToken => wire::post_required(),
        Endpoint::Info => resources::info(state, params),
        Endpoint::PortalsSelf => resources::portals_self(state, params, request),
        Endpoint::CommunitySelf => resources::community_self(state, params, request),
        Endpoint::PortalServers => resources::portal_servers(state, params, request),
        Endpoint::ContentItem => resources::content_item(state, params, request, &c.rest),
        Endpoint::HostedServices => resources::hosted_services(state, params, request, &c.rest),
        Endpoint::ServerInfo => server::info(state, c.server.as_deref(), params),
        Endpoint::ServerServices => {
            server::services(state, c.server.as_deref(), params, request, &c.rest)
        }
        Endpoint::ServerAdmin => {
            server::admin(state, c.server.as_deref(), params, request, &c.rest)
        }
        Endpoint::Unknown => wire::invalid_url(),
    }
}

fn failed(failure: &Failure) -> ResponseTemplate {
    match failure {
        Failure::ServiceUnavailable503 => wire::html(
            503,
            "503 Service Unavailable",
            "The server is temporarily unable to service your request. Please try again later.",
        ),
        Failure::HtmlPage => wire::html(
            200,
            "ArcGIS is down for maintenance",
            "We are performing scheduled maintenance. Please try again later.",
        ),
        // Slow and ConnectionReset never get here; answer like ErrorIn200 if they do.
        _ => wire::json_ok(wire::oauth_error(
            500,
            "server_error",
            "An unexpected error occurred while processing the request. Try again.",
        )),
    }
}

/// Matches (and consumes) a pending [`Failure::ConnectionReset`]: mounted with
/// a higher priority than the [`Responder`] and answered with an error, which
/// makes hyper drop the connection without a response.
pub(crate) struct ResetMatcher {
    pub(crate) state: Shared,
    pub(crate) site: Site,
}

impl Match for ResetMatcher {
    fn matches(&self, request: &Request) -> bool {
        let mut state = lock(&self.state);
        let c = classify(&state, self.site, request);
        if !state.next_failure_is_reset(c.server.as_deref(), c.endpoint) {
            return false;
        }
        let _ = state.take_failure(c.server.as_deref(), c.endpoint);
        count(&mut state, &c, &Params::of(request));
        true
    }
}

/// The error that makes wiremock's hyper server drop the connection.
pub(crate) fn connection_reset(_: &Request) -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionReset,
        "arcgis-auth-testkit: injected connection reset",
    )
}
