//! What stands in front of every console handler: the origin check of every POST and the
//! security headers of every answer ([`guard`]), who is signed in ([`SignedIn`]), and the CSRF
//! token of every form posted while signed in ([`CsrfForm`]). Handlers that change anything
//! take a `CsrfForm`, so a missing check does not compile.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::Response;

use super::session::{COOKIE, Session};
use super::{redirect, refused};
use crate::domain::Principal;
use crate::server::admin::AdminCtx;
use crate::server::error::{ApiError, read_body};
use crate::server::listen::Peer;

/// The largest console form body read.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// Refuses a POST whose `Origin` is another origin (or `null`) or whose `Sec-Fetch-Site` is
/// not `same-origin`: SameSite=Strict alone lets another port of the same host post. The
/// login form has no session yet, so this is its CSRF defence. Then sets the headers every
/// console answer carries (no script may run, no framing, nothing cached).
pub async fn guard(req: Request, next: Next) -> Response {
    if req.method() == Method::POST
        && let Err(why) = same_origin(&req)
    {
        tracing::warn!(path = %req.uri().path(), why, "console form refused");
        return refused(&ApiError::csrf_refused(format!(
            "This form was not sent by this console ({why}). Reload the page and try again."
        )));
    }
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; \
             form-action 'self'; base-uri 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

fn same_origin(req: &Request) -> Result<(), &'static str> {
    let headers = req.headers();
    if let Some(site) = headers.get("sec-fetch-site")
        && site.as_bytes() != b"same-origin"
    {
        return Err("Sec-Fetch-Site is not same-origin");
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        // HTTP/2 has no Host header: the authority is in the URI.
        let authority = req
            .uri()
            .authority()
            .map(|a| a.as_str().to_string())
            .or_else(|| {
                headers
                    .get(header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .map(str::to_string)
            })
            .ok_or("no host to compare the Origin with")?;
        if origin.as_bytes() != format!("https://{authority}").as_bytes() {
            return Err("Origin is another site");
        }
    }
    Ok(())
}

/// The value of the session cookie, if the request carries one.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_string())
}

/// The client's address as the console records it: `console:ADDRESS`.
pub fn source(parts: &Parts) -> String {
    match parts.extensions.get::<Peer>() {
        Some(Peer::Tls { addr, .. }) => addr.ip().to_string(),
        Some(Peer::Local { .. }) => "local".to_string(),
        None => "unknown".to_string(),
    }
}

/// The signed-in user of a console request: the session named by the cookie, and the
/// principal the catalog makes of its user now. Without one, the answer is the login page.
pub struct SignedIn {
    pub principal: Principal,
    pub name: String,
    pub session: Session,
    pub cookie: String,
    /// The client's address (see [`source`]).
    pub source: String,
}

impl FromRequestParts<AdminCtx> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, ctx: &AdminCtx) -> Result<Self, Response> {
        // After login the user comes back to the page asked for (a GET; a form is not re-sent).
        let asked = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/ui/");
        let back: String = form_urlencoded::byte_serialize(asked.as_bytes()).collect();
        let login = match parts.method {
            Method::GET if asked != "/ui/" => format!("/ui/login?next={back}"),
            _ => "/ui/login".to_string(),
        };
        let to_login = || redirect(&login);
        let cookie = session_cookie(&parts.headers).ok_or_else(to_login)?;
        let session = ctx
            .console
            .sessions
            .touch(&cookie, ctx.app.now())
            .ok_or_else(to_login)?;
        let found = ctx.app.read(|c| {
            let principal = c.console_principal(session.user)?;
            let name = c.user(session.user)?.name.clone();
            Some((principal, name))
        });
        let Some((principal, name)) = found else {
            // The user was deleted after login: the session ends with it.
            ctx.console.sessions.end(&cookie);
            return Err(to_login());
        };
        crate::server::metrics::record_actor(&principal.actor);
        Ok(SignedIn {
            principal,
            name,
            session,
            cookie,
            source: source(parts),
        })
    }
}

/// A form's fields, read and decoded (`application/x-www-form-urlencoded`).
pub struct Fields(pub Vec<(String, String)>);

impl Fields {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl<S: Send + Sync> FromRequest<S> for Fields {
    type Rejection = Response;

    async fn from_request(req: Request, _: &S) -> Result<Self, Response> {
        let bytes = read_body(req, MAX_FORM_BYTES)
            .await
            .map_err(|e| refused(&e))?;
        Ok(Fields(
            form_urlencoded::parse(&bytes)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        ))
    }
}

/// A form posted by a signed-in user, whose `csrf` field matched the session's token
/// (compared in constant time). Anything else is refused with 403 before the handler runs.
/// (Its other fields join it with the first form that has any; logout has none.)
pub struct CsrfForm {
    pub me: SignedIn,
    pub fields: Fields,
}

impl FromRequest<AdminCtx> for CsrfForm {
    type Rejection = Response;

    async fn from_request(req: Request, ctx: &AdminCtx) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let me = SignedIn::from_request_parts(&mut parts, ctx).await?;
        let fields = Fields::from_request(Request::from_parts(parts, body), ctx).await?;
        let sent = fields.get("csrf").unwrap_or("").as_bytes();
        let matches =
            aws_lc_rs::constant_time::verify_slices_are_equal(sent, me.session.csrf.as_bytes())
                .is_ok();
        if !matches {
            tracing::warn!(user = %me.name, "console form without its session's CSRF token");
            return Err(refused(&ApiError::csrf_refused(
                "This form has expired or was not sent by this console. Reload the page and try \
                 again.",
            )));
        }
        Ok(CsrfForm { me, fields })
    }
}
