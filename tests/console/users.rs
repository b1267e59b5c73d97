//! Users and roles in the browser, for system administrators only: creating a user, granting
//! and revoking a role, deleting a user after the confirmation (which ends their sessions);
//! anyone else finds no such page.

use super::webdriver::Browser;
use super::{
    COOKIE, PASSWORD, Plain, base, events_of, log_in, operator, screenshot, spki_hash, va_id,
};
use crate::util::Daemon;

#[test]
fn a_system_administrator_manages_users_and_their_roles() {
    let d = Daemon::start();
    d.account("acme").child("emea");
    operator(&d, "admin", &["--role", "system-admin"]);
    operator(&d, "olivia", &[]);
    let b = Browser::start(&spki_hash(&d));
    log_in(&b, &d, "admin", PASSWORD);
    let url = |path: &str| format!("{}{path}", base(&d));
    b.goto(&url("/ui/users"));
    b.type_into("#name", "paul");
    b.click("#create");
    // Waits for the answer's page (its new row) before reading it: the old page has a list too.
    b.find("#user-paul");
    assert!(b.text("#users").contains("paul"), "{}", b.text("#users"));

    // Grant and revoke post the role and the scope as the page's selects send them.
    let cookie = b.cookie(COOKIE).expect("a session")["value"]
        .as_str()
        .unwrap()
        .to_string();
    let plain = Plain::new(&d);
    let csrf = plain.csrf(&cookie);
    let paul = d
        .cli_json(&["user", "list"])
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "paul")
        .map(|u| u["id"].as_str().unwrap().to_string())
        .expect("paul");
    let emea = va_id(&d, "acme/Default/emea");
    let grant = format!("csrf={csrf}&role=va-user&scope=va%3A{emea}");
    let granted = plain.post(&format!("/ui/users/{paul}/grant"), &cookie, &grant, None);
    assert_eq!(granted.location, "/ui/users", "{}", granted.body);
    let unknown = format!("csrf={csrf}&role=overlord&scope=system");
    let refused = plain.post(&format!("/ui/users/{paul}/grant"), &cookie, &unknown, None);
    assert_eq!(refused.status, 400);
    assert!(
        refused.body.contains("unknown role `overlord`"),
        "{}",
        refused.body
    );
    b.goto(&url("/ui/users"));
    let row = b.text("#user-paul");
    assert!(
        row.contains("va-user on virtual account acme/Default/emea"),
        "{row}"
    );
    b.screenshot(&screenshot("users"));
    let revoked = plain.post(&format!("/ui/users/{paul}/revoke"), &cookie, &grant, None);
    assert_eq!(revoked.location, "/ui/users", "{}", revoked.body);
    b.goto(&url("/ui/users"));
    assert!(b.text("#user-paul").contains("No roles."));

    // Olivia is signed in; deleting her (after the confirmation) ends her session.
    let hers = plain.log_in("olivia", PASSWORD);
    assert_eq!(plain.get("/ui/users", &hers).status, 404, "not for olivia");
    assert_eq!(plain.get("/ui/", &hers).status, 200);
    b.click("#user-olivia a[href$='/delete']");
    assert!(b.text("label[for=confirm]").contains("olivia"));
    b.click("#confirm");
    b.click("#delete-submit");
    assert!(!b.text("#users").contains("olivia"));
    assert_eq!(plain.get("/ui/", &hers).status, 303, "her session ended");

    for (action, n) in [
        ("user.create", 1),
        ("user.grant", 1),
        ("user.revoke", 1),
        ("user.delete", 1),
    ] {
        let events: Vec<_> = events_of(&d, action)
            .into_iter()
            .filter(|e| e["actor"] == "user:admin")
            .collect();
        assert_eq!(events.len(), n, "{action}");
    }
}
