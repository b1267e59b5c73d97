//! Signing in and out.

use std::net::IpAddr;

use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;

use super::guard::{CsrfForm, Fields, SignedIn, source};
use super::session::COOKIE;
use super::{redirect, render};
use crate::domain::ConsoleStep;
use crate::server::admin::AdminCtx;
use crate::server::error::ApiError;

/// The login page, with a message after a failed attempt.
#[derive(askama::Template)]
#[template(path = "console/login.html")]
struct Login<'a> {
    user: &'a str,
    message: &'a str,
    next: &'a str,
}

/// Where to go after login: a console path the user asked for, else the overview. Only paths
/// under `/ui/` are followed, so a link cannot send a user off-site after login.
fn next_of(asked: Option<&str>) -> &str {
    match asked {
        Some(p) if p.starts_with("/ui/") && !p.starts_with("/ui//") && !p.contains('\\') => p,
        _ => "/ui/",
    }
}

pub async fn login_form(State(ctx): State<AdminCtx>, req: Request) -> Response {
    let (mut parts, _) = req.into_parts();
    let asked = form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "next")
        .map(|(_, v)| v.into_owned());
    let next = next_of(asked.as_deref());
    if SignedIn::from_request_parts(&mut parts, &ctx).await.is_ok() {
        return redirect(next);
    }
    let page = Login {
        user: "",
        message: "",
        next,
    };
    render(StatusCode::OK, &page)
}

/// Checks the password (after the failed-login limits, off the async threads), audits the
/// outcome, and on success opens a fresh session.
/// The longest user name there can be (`user create` allows 64 ASCII characters).
const MAX_USER_NAME_BYTES: usize = 64;

pub async fn login(State(ctx): State<AdminCtx>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let from = source(&parts);
    let ip: Option<IpAddr> = from.parse().ok();
    let Ok(fields) = Fields::from_request(Request::from_parts(parts, body), &ctx).await else {
        return redirect("/ui/login");
    };
    let name = fields.get("user").unwrap_or("").trim().to_string();
    let password = fields.get("password").unwrap_or("").to_string();
    let next = next_of(fields.get("next")).to_string();
    let again = |status: StatusCode, message: &str| {
        render(
            status,
            &Login {
                user: &name,
                message,
                next: &next,
            },
        )
    };
    let now = ctx.app.now();
    let console = &ctx.console;
    let limited = ip
        .and_then(|ip| console.by_source.check(&ip, now))
        .or_else(|| console.by_user.check(&name, now));
    if let Some(wait) = limited {
        let e = ApiError::login_limited(wait);
        tracing::warn!(source = %from, user = %name, "console login refused: too many failures");
        return again(e.status, &e.message);
    }
    let known = ctx.app.read(|c| {
        c.users().find(|u| u.name == name).map(|u| {
            let phc = c.password_of(u.id).map(|p| p.phc.clone());
            (u.id, phc)
        })
    });
    let (user, phc) = match known {
        Some((id, phc)) => (Some(id), phc),
        None => (None, None),
    };
    let ok = match console.passwords.verify(password, phc).await {
        Ok(ok) => ok,
        Err(e) => return super::refused(&e),
    };
    let Some(user) = user.filter(|_| ok) else {
        count_failure(console, ip, &name, now);
        // A name that is no user's is not stored: it may be a password typed in the wrong box.
        let (actor, who) = match user {
            Some(_) => (format!("user:{name}"), name.clone()),
            None => (format!("console:{from}"), "(unknown user)".to_string()),
        };
        audit(&ctx, &actor, ConsoleStep::LoginFailed, &who, &from).await;
        tracing::warn!(source = %from, "console login failed");
        return again(StatusCode::UNAUTHORIZED, "Wrong user name or password.");
    };
    let opened = console.sessions.open(user, now);
    audit(
        &ctx,
        &format!("user:{name}"),
        ConsoleStep::Login,
        &name,
        &from,
    )
    .await;
    let mut res = redirect(&next);
    set_cookie(
        &mut res,
        &format!(
            "{COOKIE}={}; Path=/; Secure; HttpOnly; SameSite=Strict",
            opened.cookie
        ),
    );
    res
}

/// Counts a failed login against its source address and its user name.
fn count_failure(
    console: &super::Console,
    ip: Option<IpAddr>,
    name: &str,
    now: time::OffsetDateTime,
) {
    if let Some(ip) = ip {
        console.by_source.failed(ip, now);
    }
    // A name longer than any user name may be is no one's account to protect, and keeping it
    // would let a spray of long names fill the limiter's memory.
    if name.len() <= MAX_USER_NAME_BYTES {
        console.by_user.failed(name.to_string(), now);
    }
}

/// Ends the session (server-side: the cookie is worthless from now on) and clears the cookie.
pub async fn logout(State(ctx): State<AdminCtx>, form: CsrfForm) -> Response {
    let me = form.me;
    ctx.console.sessions.end(&me.cookie);
    let actor = &me.principal.actor;
    audit(&ctx, actor, ConsoleStep::Logout, &me.name, &me.source).await;
    let mut res = redirect("/ui/login");
    set_cookie(
        &mut res,
        &format!("{COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    res
}

fn set_cookie(res: &mut Response, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
}

/// Records a sign-in step in the audit log. A store that cannot write is logged; the answer
/// to the browser does not depend on it (a failed login stays failed, a logout still ends
/// the session).
async fn audit(ctx: &AdminCtx, actor: &str, step: ConsoleStep, who: &str, from: &str) {
    let written = ctx
        .app
        .change(actor, |c, _| {
            Ok::<_, crate::domain::DomainError>((c.console_event(step, who, from), ()))
        })
        .await;
    if let Err(e) = written {
        tracing::error!(cause = %e, ?step, "cannot record a console event");
    }
}
