//! A small W3C WebDriver client over reqwest, driving Debian's headless Chromium through
//! `chromedriver`: enough to open pages, fill and submit forms, read text and cookies, and take
//! screenshots. The protocol is JSON over HTTP, so no client crate is needed.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The key under which WebDriver names an element.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A headless Chromium session, ended and its driver killed on drop.
pub struct Browser {
    runtime: tokio::runtime::Runtime,
    http: reqwest::Client,
    session: String,
    base: String,
    driver: Child,
    _log_dir: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver on a free port and a Chromium session that trusts exactly the
    /// certificate whose SubjectPublicKeyInfo has SHA-256 `spki` (base64): no blanket ignore.
    pub fn start(spki: &str) -> Browser {
        let log_dir = tempfile::tempdir().expect("a directory for the driver's log");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .arg(format!(
                "--log-path={}",
                log_dir.path().join("chromedriver.log").display()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run chromedriver ({e}): the console tests drive a real browser. \
                     Install Debian's packages with `apt-get install --no-install-recommends \
                     chromium chromium-driver` (.ci/run does)"
                )
            });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("HTTP client");
        let mut b = Browser {
            runtime,
            http,
            session: String::new(),
            base: format!("http://127.0.0.1:{port}"),
            driver,
            _log_dir: log_dir,
        };
        b.wait_ready();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": [
                "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,900", "--force-device-scale-factor=1", "--hide-scrollbars",
                "--lang=en-US", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-quic",
                "--disable-default-apps",
                format!("--ignore-certificate-errors-spki-list={spki}"),
            ]}
        }}});
        let created = b.call("POST", "/session", Some(caps));
        b.session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("chromedriver made no session: {created}"))
            .to_string();
        // Elements of the next page are waited for, not polled by the tests.
        b.call(
            "POST",
            &format!("/session/{}/timeouts", b.session),
            Some(json!({"implicit": 10_000, "pageLoad": 30_000})),
        );
        b
    }

    /// Waits (bounded) until chromedriver answers `/status` as ready.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let url = format!("{}/status", self.base);
            let ready = self.runtime.block_on(async {
                match self.http.get(&url).send().await {
                    Ok(r) => r.json::<Value>().await.ok(),
                    Err(_) => None,
                }
            });
            if ready.is_some_and(|v| v["value"]["ready"] == json!(true)) {
                return;
            }
            if let Ok(Some(status)) = self.driver.try_wait() {
                panic!("chromedriver exited at start ({status})");
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not become ready within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// One WebDriver command; an error answer fails the test with WebDriver's message.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
        let (status, value) = self.runtime.block_on(async {
            let mut req = self.http.request(method, &url);
            if let Some(b) = body {
                req = req.json(&b);
            }
            let res = req.send().await.expect("chromedriver answers");
            let status = res.status();
            let v: Value = res.json().await.expect("chromedriver answers JSON");
            (status, v)
        });
        assert!(
            status.is_success(),
            "WebDriver {path} failed ({status}): {}",
            value["value"]
        );
        value["value"].clone()
    }

    fn session_call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.call(method, &format!("/session/{}{path}", self.session), body)
    }

    pub fn goto(&self, url: &str) {
        self.session_call("POST", "/url", Some(json!({ "url": url })));
    }

    pub fn url(&self) -> String {
        self.session_call("GET", "/url", None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The page's HTML as the browser holds it.
    pub fn source(&self) -> String {
        self.session_call("GET", "/source", None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The element `css` selects (waited for up to the implicit timeout).
    pub fn find(&self, css: &str) -> String {
        let found = self.session_call(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        found[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {found}"))
            .to_string()
    }

    /// Waits (up to the implicit timeout) until the element with id `id` reads `text`: after
    /// a click that loads a page with the same element, reading it at once may read the old one.
    pub fn wait_for_text(&self, id: &str, text: &str) {
        let xpath = format!("//*[@id='{id}'][normalize-space()='{text}']");
        let found = self.session_call(
            "POST",
            "/element",
            Some(json!({"using": "xpath", "value": xpath})),
        );
        assert!(
            found[ELEMENT].is_string(),
            "no #{id} reading {text:?}: {found}"
        );
    }

    pub fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css);
        self.session_call("POST", &format!("/element/{e}/clear"), Some(json!({})));
        self.session_call(
            "POST",
            &format!("/element/{e}/value"),
            Some(json!({ "text": text })),
        );
    }

    pub fn click(&self, css: &str) {
        let e = self.find(css);
        self.session_call("POST", &format!("/element/{e}/click"), Some(json!({})));
    }

    /// The rendered text of the element `css` selects.
    pub fn text(&self, css: &str) -> String {
        let e = self.find(css);
        self.session_call("GET", &format!("/element/{e}/text"), None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// A cookie of the current page, HttpOnly ones included (WebDriver sees them all).
    pub fn cookie(&self, name: &str) -> Option<Value> {
        let all = self.session_call("GET", "/cookie", None);
        all.as_array()?.iter().find(|c| c["name"] == name).cloned()
    }

    /// Saves a PNG of the whole page (beyond the window's height) to `path`, through
    /// ChromeDriver's DevTools command: W3C's screenshot stops at the viewport.
    pub fn screenshot(&self, path: &Path) {
        let shot = self.session_call(
            "POST",
            "/goog/cdp/execute",
            Some(json!({"cmd": "Page.captureScreenshot",
                "params": {"format": "png", "captureBeyondViewport": true}})),
        );
        let png = base64_decode(shot["data"].as_str().expect("base64 PNG"));
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        std::fs::create_dir_all(path.parent().expect("a directory")).expect("the directory");
        std::fs::write(path, png).expect("write the screenshot");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let url = format!("{}/session/{}", self.base, self.session);
            let _ = self
                .runtime
                .block_on(async { self.http.delete(&url).send().await });
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (the SPKI hash Chromium takes).
pub fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_decode(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
    {
        let v = ALPHABET
            .iter()
            .position(|a| *a == c)
            .expect("a base64 character") as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

#[test]
fn base64_round_trip() {
    assert_eq!(base64_encode(b"sat"), "c2F0");
    assert_eq!(base64_encode(b"sa"), "c2E=");
    assert_eq!(base64_encode(b"s"), "cw==");
    assert_eq!(base64_decode("c2E="), b"sa");
}
