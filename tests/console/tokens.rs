//! Registration tokens in the browser: the secret shown once after creation (never in a URL,
//! gone on reload) and good for registering a device, the list, and revocation after its
//! confirmation.

use super::licenses::device_using;
use super::webdriver::Browser;
use super::{PASSWORD, base, events_of, log_in, operator, screenshot, spki_hash};
use crate::util::Daemon;

#[test]
fn a_token_secret_is_shown_once_and_the_token_is_revoked_after_confirmation() {
    let d = Daemon::start();
    d.account("acme").child("emea");
    operator(&d, "admin", &["--role", "system-admin"]);
    let b = Browser::start(&spki_hash(&d));
    log_in(&b, &d, "admin", PASSWORD);
    b.goto(&format!("{}/ui/tokens?va=acme/Default/emea", base(&d)));
    b.type_into("#description", "lab switches");
    b.type_into("#max-uses", "0");
    b.click("#create");
    let error = b.text("#error");
    assert!(
        error.contains("max uses must be at least 1"),
        "the domain's refusal: {error}"
    );
    assert!(
        b.source().contains("value=\"lab switches\""),
        "the form keeps what was sent"
    );
    assert_eq!(events_of(&d, "token.create").len(), 0, "nothing changed");
    b.type_into("#max-uses", "2");
    b.click("#create");
    b.find("#token");
    let created = b.url();
    assert!(created.ends_with("/created"), "{created}");
    let page = b.source();
    let at = page.find("value=\"srt_").expect("the secret is shown") + 7;
    let secret = page[at..].split('"').next().unwrap().to_string();
    assert!(!created.contains(&secret), "the secret is not in the URL");
    assert!(
        page.contains("data-copy=\"secret\" id=\"copy\">"),
        "the script showed the copy button: {page}"
    );
    b.screenshot(&screenshot("token-created"));

    // A reload shows the token, not its secret.
    b.goto(&created);
    assert!(b.text("#gone").contains("cannot be shown again"));
    assert!(!b.source().contains(&secret));

    device_using(&d, &secret, "regid.2019-03.com.example.ADV=1");
    b.goto(&format!("{}/ui/tokens", base(&d)));
    let list = b.text("#tokens");
    assert!(list.contains("lab switches"), "{list}");
    assert!(list.contains("1 of 2"), "one use of two: {list}");
    b.screenshot(&screenshot("tokens"));

    b.click("#tokens a[href$='/revoke']");
    assert!(b.text("h1").contains("acme/Default/emea"));
    b.click("#revoke-submit");
    assert!(
        b.text("#tokens").contains("revoked"),
        "{}",
        b.text("#tokens")
    );
    let made = events_of(&d, "token.create");
    assert_eq!((made.len(), &made[0]["actor"]), (1, &"user:admin".into()));
    assert_eq!(events_of(&d, "token.revoke").len(), 1);
}
