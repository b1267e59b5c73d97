//! The web console (SPEC §12) in a real browser: headless Chromium from Debian's `chromium`
//! and `chromium-driver` packages, driven over WebDriver ([`webdriver`]) against the real
//! daemon over real TLS. The browser trusts exactly the daemon's certificate (its SPKI hash),
//! not any certificate. Checks the browser cannot make (a form without its CSRF token, an old
//! cookie after logout) are made with reqwest and the session cookie. The screenshots in
//! docs/console/ are written by these tests, each run.

mod accounts;
mod cisco;
mod csrf;
mod devices;
mod licenses;
mod login_limits;
mod pages_b;
mod tokens;
mod users;
mod webdriver;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::util::{BIN, Daemon, agent_ok};
use webdriver::{Browser, base64_encode};

const ADV: &str = "regid.2019-03.com.example.ADV";
const PASSWORD: &str = "correct horse battery staple";
const COOKIE: &str = "__Host-satellite_session";

/// Sets `user`'s console password through `satellite user passwd --stdin`.
fn passwd(d: &Daemon, user: &str, password: &str) -> std::process::Output {
    let mut child = Command::new(BIN)
        .args(["--config", d.config_path.to_str().unwrap()])
        .args(["user", "passwd", user, "--stdin"])
        .env_remove("SATELLITE_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run satellite user passwd");
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    child.wait_with_output().expect("user passwd ends")
}

/// A user with a console password and, unless `role` is empty, a role.
fn operator(d: &Daemon, name: &str, grant: &[&str]) {
    d.cli_ok(&["user", "create", name]);
    if !grant.is_empty() {
        let mut args = vec!["user", "grant", name];
        args.extend_from_slice(grant);
        d.cli_ok(&args);
    }
    let out = passwd(d, name, PASSWORD);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The base64 SHA-256 of the daemon's server certificate's SubjectPublicKeyInfo: what
/// Chromium's `--ignore-certificate-errors-spki-list` takes.
fn spki_hash(d: &Daemon) -> String {
    let pem = std::fs::read(d.data_dir.join("tls/server.pem")).expect("the server certificate");
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).expect("PEM");
    let cert = pem.parse_x509().expect("a certificate");
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, cert.public_key().raw);
    base64_encode(digest.as_ref())
}

fn base(d: &Daemon) -> String {
    format!("https://localhost:{}", d.admin_addr.port())
}

fn screenshot(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("docs/console/{name}.png"))
}

/// Logs in through the login form, as a person would.
fn log_in(b: &Browser, d: &Daemon, user: &str, password: &str) {
    b.goto(&format!("{}/ui/login", base(d)));
    b.type_into("#user", user);
    b.type_into("#password", password);
    b.click("#sign-in");
    // The answer's page, whichever it is: signed in (`#who`) or refused (`#message`). Waiting
    // for it keeps the next navigation from cutting the login short on a busy machine (the
    // password hash takes a while), which would leave the browser without its session.
    b.find("#who, #message");
}

/// Plain HTTPS to the console without following redirects, for what a browser will not send.
struct Plain {
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
    base: String,
}

/// An answer: status, `Location`, `Set-Cookie` and the body.
struct Answer {
    status: u16,
    location: String,
    set_cookie: String,
    body: String,
}

impl Plain {
    fn new(d: &Daemon) -> Plain {
        let ca = reqwest::Certificate::from_pem(d.ca_pem.as_bytes()).unwrap();
        Plain {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            client: reqwest::Client::builder()
                .tls_certs_only([ca])
                .resolve("localhost", d.admin_addr)
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            base: base(d),
        }
    }

    fn send(&self, req: reqwest::RequestBuilder) -> Answer {
        self.runtime.block_on(async {
            let res = req.send().await.expect("an answer");
            let header = |n: &str| {
                res.headers()
                    .get(n)
                    .map(|v| v.to_str().unwrap().to_string())
                    .unwrap_or_default()
            };
            let (location, set_cookie) = (header("location"), header("set-cookie"));
            Answer {
                status: res.status().as_u16(),
                location,
                set_cookie,
                body: res.text().await.unwrap(),
            }
        })
    }

    fn get(&self, path: &str, cookie: &str) -> Answer {
        let req = self.client.get(format!("{}{path}", self.base));
        self.send(req.header("cookie", format!("{COOKIE}={cookie}")))
    }

    fn post(&self, path: &str, cookie: &str, form: &str, origin: Option<&str>) -> Answer {
        let mut req = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", format!("{COOKIE}={cookie}"))
            .body(form.to_string());
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        self.send(req)
    }

    /// Logs in and returns the session cookie's value.
    fn log_in(&self, user: &str, password: &str) -> String {
        let form = format!("user={user}&password={}", password.replace(' ', "+"));
        let a = self.post("/ui/login", "", &form, None);
        assert_eq!(a.status, 303, "login: {}", a.body);
        let cookie = a
            .set_cookie
            .strip_prefix(&format!("{COOKIE}="))
            .and_then(|rest| rest.split(';').next())
            .unwrap_or_else(|| panic!("no session cookie: {}", a.set_cookie));
        for attribute in ["Path=/", "Secure", "HttpOnly", "SameSite=Strict"] {
            assert!(a.set_cookie.contains(attribute), "{}", a.set_cookie);
        }
        cookie.to_string()
    }

    /// The session's CSRF token, read from the overview's logout form.
    fn csrf(&self, cookie: &str) -> String {
        let page = self.get("/ui/", cookie);
        assert_eq!(page.status, 200, "{}", page.body);
        let at = page
            .body
            .find("name=\"csrf\" value=\"")
            .expect("a CSRF field")
            + 19;
        page.body[at..at + 64].to_string()
    }
}

fn events_of(d: &Daemon, action: &str) -> Vec<Value> {
    d.events()
        .into_iter()
        .filter(|e| e["action"] == action)
        .collect()
}

#[test]
fn passwords_are_checked_stored_as_argon2id_and_audited() {
    let d = Daemon::start();
    d.cli_ok(&["user", "create", "olivia"]);
    let before = d.event_count();
    let short = passwd(&d, "olivia", "too short");
    assert_eq!(short.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&short.stderr);
    assert!(stderr.contains("at least 12 characters"), "{stderr}");
    assert!(
        !stderr.contains("too short\n"),
        "the password is not echoed: {stderr}"
    );
    assert_eq!(d.event_count(), before, "nothing changed");

    let out = passwd(&d, "olivia", PASSWORD);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let set = events_of(&d, "user.passwd");
    assert_eq!(set.len(), 1);
    assert_eq!(set[0]["subject"], "olivia");
    assert!(!set[0].to_string().contains("horse"), "{}", set[0]);
    assert!(!d.log().contains("horse"), "the password is never logged");

    let unknown = passwd(&d, "nobody", PASSWORD);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("nobody"));
}

#[test]
fn a_browser_logs_in_and_the_overview_shows_the_agents_device_and_the_shortage() {
    let d = Daemon::start();
    let acme = d.account("acme");
    acme.license(ADV, 1);
    acme.child("emea").license(ADV, 4);
    let token = acme.token().secret;
    operator(&d, "admin", &["--role", "system-admin"]);

    let tmp = tempfile::tempdir().unwrap();
    let ca = tmp.path().join("ca.pem");
    std::fs::write(&ca, &d.ca_pem).unwrap();
    let dir = tmp.path().join("agent");
    let url = format!("https://{}", d.device_addr);
    let (ca, usage) = (ca.to_str().unwrap(), format!("{ADV}=3"));
    agent_ok(
        &dir,
        &[
            "register",
            "--url",
            &url,
            "--ca",
            ca,
            "--token",
            &token,
            "--pid",
            "C9300-24T",
            "--serial",
            "FOC1",
            "--hostname",
            "sw-01",
        ],
    );
    agent_ok(&dir, &["report", "--usage", &usage]);

    let b = Browser::start(&spki_hash(&d));
    b.goto(&format!("{}/ui/", base(&d)));
    assert!(b.url().ends_with("/ui/login"), "{}", b.url());
    b.find("#user");
    b.screenshot(&screenshot("login"));
    log_in(&b, &d, "admin", PASSWORD);
    assert_eq!(b.text("#who"), "admin");
    let devices = b.text("#devices");
    assert!(devices.contains("1 device(s)"), "{devices}");
    assert!(devices.contains("Out of compliance 1"), "{devices}");
    let shortages = b.text("#shortages");
    assert!(shortages.contains("acme/Default"), "{shortages}");
    assert!(
        shortages.contains("acme/Default/emea (4)"),
        "spare: {shortages}"
    );
    assert!(b.text("#health").contains("healthy"));
    b.screenshot(&screenshot("overview"));

    let logins = events_of(&d, "console.login");
    assert_eq!(logins.len(), 1);
    assert_eq!(logins[0]["actor"], "user:admin");
}

#[test]
fn a_wrong_password_is_refused_audited_and_rate_limited() {
    let d = Daemon::start();
    operator(&d, "olivia", &[]);
    let b = Browser::start(&spki_hash(&d));
    log_in(&b, &d, "olivia", "not the password at all");
    assert_eq!(b.text("#message"), "Wrong user name or password.");
    assert!(b.cookie(COOKIE).is_none(), "no session");
    b.screenshot(&screenshot("login-refused"));
    log_in(&b, &d, "mallory", "guessing a name here");
    assert_eq!(b.text("#message"), "Wrong user name or password.");

    let failed = events_of(&d, "console.login_failed");
    assert_eq!(failed.len(), 2, "{failed:?}");
    // Newest first: the unknown name is not stored; the address is.
    assert_eq!(failed[0]["actor"], "console:127.0.0.1");
    assert!(!failed[0].to_string().contains("mallory"), "{}", failed[0]);
    assert_eq!(failed[1]["actor"], "user:olivia");
    assert!(!failed[1].to_string().contains("not the password"));

    // Five failures per user name: the sixth try is refused before any hash, even with the
    // right password.
    let plain = Plain::new(&d);
    for _ in 0..4 {
        let a = plain.post(
            "/ui/login",
            "",
            "user=olivia&password=wrong+wrong+wrong",
            None,
        );
        assert_eq!(a.status, 401);
    }
    let form = format!("user=olivia&password={}", PASSWORD.replace(' ', "+"));
    let limited = plain.post("/ui/login", "", &form, None);
    assert_eq!(limited.status, 429, "{}", limited.body);
    assert!(limited.body.contains("too many failed logins"));
}

#[test]
fn forms_without_the_csrf_token_or_from_another_origin_are_refused() {
    let d = Daemon::start();
    operator(&d, "olivia", &[]);
    let plain = Plain::new(&d);
    let cookie = plain.log_in("olivia", PASSWORD);
    let csrf = plain.csrf(&cookie);
    let before = d.event_count();

    let without = plain.post("/ui/logout", &cookie, "", None);
    assert_eq!(without.status, 403, "{}", without.body);
    assert!(without.body.contains("Reload the page"), "{}", without.body);
    let wrong = plain.post(
        "/ui/logout",
        &cookie,
        &format!("csrf={}", "0".repeat(64)),
        None,
    );
    assert_eq!(wrong.status, 403);
    let evil = Some("https://evil.example");
    let cross = plain.post("/ui/logout", &cookie, &format!("csrf={csrf}"), evil);
    assert_eq!(cross.status, 403);
    let login_elsewhere = plain.post("/ui/login", "", "user=olivia&password=x", evil);
    assert_eq!(login_elsewhere.status, 403, "login CSRF");
    assert_eq!(d.event_count(), before, "nothing changed");
    assert_eq!(plain.get("/ui/", &cookie).status, 200, "still signed in");

    // Signed out, a page sends to the login page, which comes back to it; never off-site.
    let asked = plain.get("/ui/?x=1", "");
    assert_eq!(asked.location, "/ui/login?next=%2Fui%2F%3Fx%3D1");
    let form = format!("user=olivia&password={}", PASSWORD.replace(' ', "+"));
    let back = plain.post(
        "/ui/login",
        "",
        &format!("{form}&next=%2Fui%2F%3Fx%3D1"),
        None,
    );
    assert_eq!(back.location, "/ui/?x=1");
    let off = plain.post(
        "/ui/login",
        "",
        &format!("{form}&next=%2F%2Fevil.example"),
        None,
    );
    assert_eq!(off.location, "/ui/");

    // The JSON API does not take the cookie: it keeps its bearer tokens.
    let api = plain.get("/v1/status", &cookie);
    assert_eq!(api.status, 401, "{}", api.body);
}

#[test]
fn logout_password_change_and_deletion_end_sessions() {
    let d = Daemon::start();
    operator(&d, "olivia", &[]);
    let b = Browser::start(&spki_hash(&d));
    log_in(&b, &d, "olivia", PASSWORD);
    assert_eq!(b.text("#who"), "olivia");
    let cookie = b.cookie(COOKIE).expect("a session cookie");
    assert_eq!(cookie["httpOnly"], true);
    assert_eq!(cookie["secure"], true);
    assert_eq!(cookie["sameSite"], "Strict");
    let old = cookie["value"].as_str().unwrap().to_string();
    let plain = Plain::new(&d);
    assert_eq!(plain.get("/ui/", &old).status, 200);

    b.click("#logout");
    b.find("#sign-in");
    assert!(b.cookie(COOKIE).is_none(), "the browser dropped it");
    let after = plain.get("/ui/", &old);
    assert_eq!((after.status, after.location.as_str()), (303, "/ui/login"));
    assert_eq!(events_of(&d, "console.logout").len(), 1);

    // A new password signs the user out everywhere, and so does deletion.
    let second = plain.log_in("olivia", PASSWORD);
    assert!(
        passwd(&d, "olivia", "another long passphrase")
            .status
            .success()
    );
    assert_eq!(plain.get("/ui/", &second).status, 303);
    let third = plain.log_in("olivia", "another long passphrase");
    d.cli_ok(&["user", "delete", "olivia"]);
    assert_eq!(plain.get("/ui/", &third).status, 303);
    let gone = plain.post(
        "/ui/login",
        "",
        "user=olivia&password=another+long+passphrase",
        None,
    );
    assert_eq!(gone.status, 401, "the password went with the user");
}

#[test]
fn a_va_user_sees_only_its_subtree() {
    let d = Daemon::start();
    let acme = d.account("acme");
    let emea = acme.child("emea");
    emea.license(ADV, 2);
    acme.child("apac").license(ADV, 7);
    d.account("globex").license(ADV, 9);
    operator(
        &d,
        "paul",
        &["--role", "va-user", "--va", "acme/Default/emea"],
    );

    let b = Browser::start(&spki_hash(&d));
    log_in(&b, &d, "paul", PASSWORD);
    assert_eq!(b.text("#who"), "paul");
    let page = b.source();
    for hidden in ["apac", "globex", "Sync and store"] {
        assert!(
            !page.contains(hidden),
            "{hidden} is outside paul's scope: {page}"
        );
    }
    let scope = b.text(".scope");
    assert!(
        scope.starts_with("1 account(s), 1 virtual account(s), 1 license line(s)"),
        "{scope}"
    );
    b.screenshot(&screenshot("overview-va-user"));
}

/// The id of the VA at `path`, as `va show` prints it.
fn va_id(d: &Daemon, path: &str) -> String {
    let shown = d.cli_json(&["va", "show", path]);
    shown["id"].as_str().expect("a VA id").to_string()
}
