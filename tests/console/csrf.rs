//! Every console route that takes a POST, read from the sources so that a new page is covered
//! the day it is added: refused with 403 without the session's CSRF token, and with a wrong
//! one, before anything is looked up or changed.

use super::{PASSWORD, Plain, operator};
use crate::util::Daemon;

/// The paths of the `.route(...)` calls in `src` whose method router has a `post`.
fn post_routes(src: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = src;
    while let Some(at) = rest.find(".route(") {
        rest = &rest[at + ".route(".len()..];
        let Some(open) = rest.find('"') else { break };
        let Some(len) = rest[open + 1..].find('"') else {
            break;
        };
        let path = &rest[open + 1..open + 1 + len];
        let after = &rest[open + 1 + len..];
        let end = [".route(", ".merge(", "\n}"]
            .iter()
            .filter_map(|m| after.find(m))
            .min()
            .unwrap_or(after.len());
        if after[..end].contains("post(") {
            out.push(path.to_string());
        }
    }
    out
}

/// Every console POST route, with each `{parameter}` filled with a value that names nothing.
fn console_post_routes() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/server/console");
    let mut routes = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            routes.extend(post_routes(&std::fs::read_to_string(&path).unwrap()));
        }
    }
    routes.sort();
    routes
        .into_iter()
        .map(|r| {
            r.split('/')
                .map(|part| if part.starts_with('{') { "0" } else { part })
                .collect::<Vec<_>>()
                .join("/")
        })
        .collect()
}

#[test]
fn every_console_post_route_refuses_a_form_without_the_csrf_token() {
    let routes = console_post_routes();
    for known in [
        "/ui/logout",
        "/ui/vas",
        "/ui/vas/0/move",
        "/ui/vas/0/delete",
        "/ui/licenses",
        "/ui/licenses/transfer",
        "/ui/licenses/0/remove",
        "/ui/tokens",
        "/ui/users",
        "/ui/users/0/grant",
        "/ui/devices/0/move",
        "/ui/backup",
    ] {
        assert!(routes.iter().any(|r| r == known), "{known} in {routes:?}");
    }
    let d = Daemon::start();
    d.account("acme");
    operator(&d, "root", &["--role", "system-admin"]);
    let plain = Plain::new(&d);
    let cookie = plain.log_in("root", PASSWORD);
    let before = d.event_count();
    for route in routes.iter().filter(|r| *r != "/ui/login") {
        for form in ["", "csrf=0000&va=acme%2FDefault&quantity=1&name=x"] {
            let a = plain.post(route, &cookie, form, None);
            assert_eq!(a.status, 403, "POST {route} with {form:?}: {}", a.body);
            assert!(a.body.contains("Reload the page"), "{route}: {}", a.body);
        }
    }
    assert_eq!(d.event_count(), before, "nothing changed");
    assert_eq!(plain.get("/ui/", &cookie).status, 200, "still signed in");
}
