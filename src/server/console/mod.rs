//! The web console (SPEC §12) on the admin HTTPS listener, under `/ui/`: server-rendered pages
//! (askama templates compiled into the binary, `templates/console/`), one embedded stylesheet
//! and one embedded script of a few lines (a copy button; every page works without it).
//!
//! Who is signed in comes from a session cookie ([`session`]); what they may see is the
//! domain's, read from the catalog on every request with the same calls the admin API makes,
//! so a VA outside the user's scope is "not found" here as there. Every POST passes the origin
//! check ([`guard`]) and, once signed in, the session's CSRF token ([`guard::CsrfForm`]).
//! The JSON API ignores the cookie: it keeps its bearer tokens and needs no CSRF defence.

mod accounts;
mod backup;
mod cisco;
mod compliance;
mod device;
mod devices;
mod events;
mod forms;
mod guard;
mod licenses;
mod overview;
mod pages;
pub mod password;
pub mod session;
mod sync;
mod tokens;
mod users;

use std::net::IpAddr;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use time::Duration;

use super::admin::AdminCtx;
use super::ratelimit::FailureLimiter;
use crate::config::ConsoleSettings;
use password::Passwords;
use session::Sessions;

/// Failed logins allowed per source address per [`LOGIN_WINDOW`].
const FAILURES_PER_SOURCE: u32 = 20;
/// Failed logins allowed per user name per [`LOGIN_WINDOW`].
const FAILURES_PER_USER: u32 = 5;
const LOGIN_WINDOW: Duration = Duration::minutes(5);

/// The console's state: sessions, the password hasher and the failed-login limits.
#[derive(Debug)]
pub struct Console {
    pub sessions: Sessions,
    pub passwords: Passwords,
    /// New secrets waiting for their one showing.
    pub shown_once: forms::ShownOnce,
    by_source: FailureLimiter<IpAddr>,
    by_user: FailureLimiter<String>,
}

impl Console {
    pub fn new(settings: ConsoleSettings) -> Self {
        Console {
            sessions: Sessions::new(settings),
            passwords: Passwords::default(),
            shown_once: forms::ShownOnce::default(),
            by_source: FailureLimiter::new(FAILURES_PER_SOURCE, LOGIN_WINDOW),
            by_user: FailureLimiter::new(FAILURES_PER_USER, LOGIN_WINDOW),
        }
    }
}

/// The console's routes, merged into the admin router.
pub fn routes() -> Router<AdminCtx> {
    Router::new()
        .route("/ui", get(|| async { redirect("/ui/") }))
        .route("/ui/", get(overview::overview))
        .route("/ui/login", get(pages::login_form).post(pages::login))
        .route("/ui/logout", axum::routing::post(pages::logout))
        .route("/ui/static/console.css", get(stylesheet))
        .merge(accounts::routes())
        .merge(licenses::routes())
        .merge(tokens::routes())
        .merge(users::routes())
        .merge(devices::routes())
        .merge(device::routes())
        .merge(compliance::routes())
        .merge(events::routes())
        .merge(sync::routes())
        .merge(backup::routes())
        .merge(cisco::routes())
        .layer(axum::middleware::from_fn(guard::guard))
}

/// The one stylesheet, embedded.
async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../../templates/console/console.css"),
    )
        .into_response()
}

/// A `303 See Other` to `to`, the answer to a form (so a reload does not post it again).
fn redirect(to: &str) -> Response {
    let mut res = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res
}

/// Renders a page; a template that fails to render is the satellite's fault, logged.
fn render<T: askama::Template>(status: StatusCode, page: &T) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(cause = %e, "a console page failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be rendered",
            )
                .into_response()
        }
    }
}

/// A page that only says why a request was refused, with the status `error.rs` gave it.
#[derive(askama::Template)]
#[template(path = "console/refused.html")]
struct Refused<'a> {
    title: &'a str,
    message: &'a str,
}

fn refused(e: &super::error::ApiError) -> Response {
    let title = e.status.canonical_reason().unwrap_or("Refused");
    render(
        e.status,
        &Refused {
            title,
            message: &e.message,
        },
    )
}
