//! The accounts page and the VA tree in the browser: creating VAs, moving one, deleting one
//! only after its confirmation (and never one that holds licenses), a va-user's view limited to
//! its subtree with every other VA not found, and every form of these pages refused without
//! its CSRF token.

use super::webdriver::Browser;
use super::{
    ADV, COOKIE, PASSWORD, Plain, base, events_of, log_in, operator, screenshot, spki_hash, va_id,
};
use crate::util::Daemon;

#[test]
fn vas_are_created_moved_and_deleted_only_after_their_confirmation() {
    let d = Daemon::start();
    d.account("acme").child("emea").license(ADV, 2);
    operator(&d, "admin", &["--role", "system-admin"]);
    let b = Browser::start(&spki_hash(&d));
    log_in(&b, &d, "admin", PASSWORD);
    let url = |path: &str| format!("{}{path}", base(&d));

    // The first parent offered is acme's Default VA; then a child from the new VA's page.
    b.goto(&url("/ui/accounts"));
    b.type_into("#name", "lab");
    b.click("#create");
    b.wait_for_text("va-path", "acme/Default/lab");
    b.type_into("#name", "bench");
    b.click("#create");
    b.wait_for_text("va-path", "acme/Default/lab/bench");
    b.goto(&url("/ui/accounts"));
    let nested = b.text("#tree-acme > li > ul > li > ul > li");
    assert!(
        nested.starts_with("bench"),
        "bench nests under lab: {nested}"
    );
    assert!(b.text("#tree-acme").contains("emea 1 license line(s)"));
    b.screenshot(&screenshot("accounts"));

    // A VA holding licenses: the domain's refusal, on the confirmation page.
    let emea = va_id(&d, "acme/Default/emea");
    b.goto(&url(&format!("/ui/vas/{emea}/delete")));
    b.click("#confirm");
    b.click("#delete-submit");
    let error = b.text("#error");
    assert!(error.contains("is not empty"), "{error}");
    b.screenshot(&screenshot("va-delete"));

    let bench = va_id(&d, "acme/Default/lab/bench");
    b.goto(&url(&format!("/ui/vas/{bench}/delete")));
    assert!(
        b.text("label[for=confirm]")
            .contains("acme/Default/lab/bench")
    );
    b.click("#confirm");
    b.click("#delete-submit");
    b.find("#tree-acme");
    assert!(b.url().ends_with("/ui/accounts"), "{}", b.url());
    assert!(!b.text("#tree-acme").contains("bench"));

    // Without the box ticked (a form posted by hand), nothing is deleted.
    let cookie = b.cookie(COOKIE).expect("a session")["value"]
        .as_str()
        .unwrap()
        .to_string();
    let plain = Plain::new(&d);
    let csrf = plain.csrf(&cookie);
    let lab = va_id(&d, "acme/Default/lab");
    let before = d.event_count();
    let unconfirmed = plain.post(
        &format!("/ui/vas/{lab}/delete"),
        &cookie,
        &format!("csrf={csrf}"),
        None,
    );
    assert_eq!(unconfirmed.status, 400, "{}", unconfirmed.body);
    assert!(
        unconfirmed
            .body
            .contains("tick the box naming the virtual account")
    );
    assert_eq!(d.event_count(), before, "nothing changed");

    let moved = plain.post(
        &format!("/ui/vas/{lab}/move"),
        &cookie,
        &format!("csrf={csrf}&parent={emea}"),
        None,
    );
    assert_eq!(moved.location, format!("/ui/vas/{lab}"), "{}", moved.body);
    assert_eq!(va_id(&d, "acme/Default/emea/lab"), lab);
    b.goto(&url(&format!("/ui/vas/{lab}")));
    assert_eq!(b.text("#va-path"), "acme/Default/emea/lab");
    b.screenshot(&screenshot("va"));

    // Each change is audited once, as the signed-in user.
    for (action, n) in [("va.create", 3), ("va.move", 1), ("va.delete", 1)] {
        let events = events_of(&d, action);
        assert_eq!(events.len(), n, "{action}: {events:?}");
        assert_eq!(events[0]["actor"], "user:admin", "{action}");
    }
}

#[test]
fn a_va_user_sees_its_subtree_and_every_other_va_is_not_found() {
    let d = Daemon::start();
    let acme = d.account("acme");
    acme.child("emea").license(ADV, 2);
    acme.child("apac").license(ADV, 7);
    d.account("globex");
    operator(
        &d,
        "paul",
        &["--role", "va-user", "--va", "acme/Default/emea"],
    );
    let b = Browser::start(&spki_hash(&d));
    log_in(&b, &d, "paul", PASSWORD);
    b.goto(&format!("{}/ui/accounts", base(&d)));
    let page = b.source();
    let tree = b.text("#tree-acme");
    assert!(
        tree.starts_with("emea"),
        "emea is the root of paul's tree: {tree}"
    );
    assert!(!tree.contains("Default"), "{tree}");
    for hidden in ["apac", "globex"] {
        assert!(!page.contains(hidden), "{hidden} is outside paul's scope");
    }
    let apac = va_id(&d, "acme/Default/apac");
    b.goto(&format!("{}/ui/vas/{apac}", base(&d)));
    assert!(b.text("#message").contains("not found"), "{}", b.source());

    let plain = Plain::new(&d);
    let cookie = plain.log_in("paul", PASSWORD);
    for path in [
        format!("/ui/vas/{apac}"),
        format!("/ui/vas/{apac}/delete"),
        format!("/ui/licenses?va={apac}"),
        format!("/ui/tokens?va={apac}"),
        "/ui/users".to_string(),
    ] {
        let a = plain.get(&path, &cookie);
        assert_eq!(a.status, 404, "{path}: {}", a.body);
        assert!(
            !a.body.contains("apac"),
            "{path} names nothing outside the scope"
        );
    }
    // A change to a VA outside the scope is not found either, and changes nothing.
    let csrf = plain.csrf(&cookie);
    let before = d.event_count();
    let create = plain.post(
        "/ui/vas",
        &cookie,
        &format!("csrf={csrf}&parent={apac}&name=x"),
        None,
    );
    assert_eq!(create.status, 404, "{}", create.body);
    assert_eq!(d.event_count(), before);
}

#[test]
fn every_form_of_these_pages_is_refused_without_its_csrf_token() {
    let d = Daemon::start();
    d.account("acme").license(ADV, 2);
    operator(&d, "admin", &["--role", "system-admin"]);
    let plain = Plain::new(&d);
    let cookie = plain.log_in("admin", PASSWORD);
    let va = va_id(&d, "acme/Default");
    let before = d.event_count();
    for (path, form) in [
        ("/ui/vas".to_string(), format!("parent={va}&name=x")),
        (format!("/ui/vas/{va}/move"), format!("parent={va}")),
        (format!("/ui/vas/{va}/delete"), format!("confirm={va}")),
        (
            "/ui/licenses".to_string(),
            format!("va={va}&tag={ADV}&quantity=1"),
        ),
        (
            "/ui/licenses/transfer".to_string(),
            format!("from={va}&to={va}&tag={ADV}&quantity=1"),
        ),
        ("/ui/licenses/any/remove".to_string(), String::new()),
        ("/ui/tokens".to_string(), format!("va={va}")),
        ("/ui/tokens/any/revoke".to_string(), String::new()),
        ("/ui/users".to_string(), "name=mallory".to_string()),
        (
            "/ui/users/any/grant".to_string(),
            "role=system-admin&scope=system".to_string(),
        ),
        (
            "/ui/users/any/revoke".to_string(),
            "role=system-admin&scope=system".to_string(),
        ),
        ("/ui/users/any/delete".to_string(), String::new()),
    ] {
        let a = plain.post(&path, &cookie, &form, None);
        assert_eq!(a.status, 403, "{path}: {}", a.body);
        assert!(a.body.contains("Reload the page"), "{path}");
    }
    assert_eq!(d.event_count(), before, "nothing changed");
}
