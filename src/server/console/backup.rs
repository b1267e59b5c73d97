//! Backup download, for system administrators: the page explains, and its form (a POST, since
//! taking a backup writes an audit event) answers with the file `satellite backup` writes,
//! streamed by the admin API's own handler (`App::backup`, one `backup.create` event).

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::get;

use super::guard::{CsrfForm, SignedIn};
use super::{refused, render};
use crate::server::admin::{AdminCtx, Caller};

pub fn routes() -> Router<AdminCtx> {
    Router::new().route("/ui/backup", get(page).post(download))
}

#[derive(askama::Template)]
#[template(path = "console/backup.html")]
struct BackupPage {
    user: String,
    csrf: String,
}

pub async fn page(State(ctx): State<AdminCtx>, me: SignedIn) -> Response {
    if let Err(e) = ctx.app.read(|c| c.check_system(&me.principal)) {
        return refused(&e.into());
    }
    render(
        StatusCode::OK,
        &BackupPage {
            user: me.name.clone(),
            csrf: me.session.csrf.clone(),
        },
    )
}

pub async fn download(State(ctx): State<AdminCtx>, form: CsrfForm) -> Response {
    let caller = Caller(form.me.principal.clone());
    let stamp = ctx.app.now().unix_timestamp();
    match crate::server::admin::backup::backup(State(ctx), caller).await {
        Ok(mut res) => {
            let name = format!("attachment; filename=\"satellite-{stamp}.backup\"");
            if let Ok(v) = HeaderValue::from_str(&name) {
                res.headers_mut().insert(header::CONTENT_DISPOSITION, v);
            }
            res
        }
        Err(e) => refused(&e),
    }
}
