//! A headless Chromium driven through ChromeDriver (W3C WebDriver), for the
//! UI tests. Needs Debian's `chromium` and `chromium-driver` (`.ci/run`
//! installs them).

use crate::http;
use serde_json::{json, Value};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A browser session; the driver is stopped when dropped.
pub struct Browser {
    driver: Child,
    addr: String,
    session: String,
    _profile: tempfile::TempDir,
}

/// An element of the page.
#[derive(Debug, Clone)]
pub struct Element(String);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn which(names: &[&str]) -> Option<String> {
    names.iter().find(|p| Path::new(p).exists()).map(|p| (*p).to_owned())
}

impl Browser {
    pub fn start() -> Browser {
        let driver_path = which(&["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"])
            .expect("chromedriver is missing: install the Debian packages chromium and chromium-driver (.ci/run does)");
        let chromium = which(&["/usr/bin/chromium", "/usr/bin/chromium-browser"])
            .expect("chromium is missing: install the Debian packages chromium and chromium-driver (.ci/run does)");
        let port = free_port();
        let driver = Command::new(driver_path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let addr = format!("127.0.0.1:{port}");
        let start = Instant::now();
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(start.elapsed() < Duration::from_secs(20), "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1280,900",
                format!("--user-data-dir={}", profile.path().display())
            ]}
        }}});
        let r = http::request(&addr, "POST", "/session", Some(&caps));
        let session = r.body["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {}", r.text))
            .to_owned();
        Browser { driver, addr, session, _profile: profile }
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let body = body.or_else(|| (method == "POST").then(|| json!({})));
        let r = http::request(&self.addr, method, &format!("/session/{}{path}", self.session), body.as_ref());
        assert!(r.status < 300, "WebDriver {method} {path} failed: {}", r.text);
        r.body["value"].clone()
    }

    /// Runs `script` in the page (its `return` value comes back).
    pub fn script(&self, script: &str) -> Value {
        self.call("POST", "/execute/sync", Some(json!({"script": script, "args": []})))
    }

    /// axe-core's serious and critical violations on the page as it is now
    /// (`BUS_TEST_UI_TOOLS` names the folder `scripts/test` installs it in):
    /// each as `rule (impact): up to three nodes`.
    pub fn accessibility_violations(&self) -> Vec<String> {
        let dir = std::env::var("BUS_TEST_UI_TOOLS")
            .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../target/ui-tools").to_owned());
        let path = std::path::Path::new(&dir).join("node_modules/axe-core/axe.min.js");
        let axe = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("axe-core is not at {} ({e}); scripts/test installs it", path.display()));
        self.script(&format!("{axe}\nreturn true;"));
        let found = self.call(
            "POST",
            "/execute/async",
            Some(json!({"script": "const done = arguments[arguments.length - 1]; \
                axe.run(document, {resultTypes: ['violations']}).then((r) => done(r.violations \
                  .filter((v) => v.impact === 'serious' || v.impact === 'critical') \
                  .map((v) => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', ')}`)), \
                  (e) => done([`axe failed: ${e}`]));", "args": []})),
        );
        found.as_array().unwrap().iter().map(|v| v.as_str().unwrap_or_default().to_owned()).collect()
    }

    pub fn goto(&self, url: &str) {
        self.call("POST", "/url", Some(json!({"url": url})));
    }

    fn try_find(&self, css: &str) -> Option<Element> {
        let r = http::request(
            &self.addr,
            "POST",
            &format!("/session/{}/element", self.session),
            Some(&json!({"using": "css selector", "value": css})),
        );
        r.body["value"][ELEMENT].as_str().map(|id| Element(id.to_owned()))
    }

    /// Waits (up to 10 s) for an element to appear.
    pub fn find(&self, css: &str) -> Element {
        let start = Instant::now();
        loop {
            if let Some(e) = self.try_find(css) {
                return e;
            }
            assert!(start.elapsed() < Duration::from_secs(10), "no element matches `{css}`");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits (up to 10 s) for a dialog (`confirm`, `alert`) and answers
    /// it: OK when `accept`, Cancel otherwise. Returns the text it showed.
    pub fn answer_dialog(&self, accept: bool) -> String {
        let start = Instant::now();
        loop {
            let r = http::request(&self.addr, "GET", &format!("/session/{}/alert/text", self.session), None);
            if r.status < 300 {
                let text = r.body["value"].as_str().unwrap_or_default().to_owned();
                self.call("POST", if accept { "/alert/accept" } else { "/alert/dismiss" }, None);
                return text;
            }
            assert!(start.elapsed() < Duration::from_secs(10), "no dialog opened");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn find_all(&self, css: &str) -> Vec<Element> {
        let v = self.call("POST", "/elements", Some(json!({"using": "css selector", "value": css})));
        v.as_array().unwrap().iter().filter_map(|e| e[ELEMENT].as_str().map(|id| Element(id.to_owned()))).collect()
    }

    pub fn click(&self, e: &Element) {
        self.call("POST", &format!("/element/{}/click", e.0), None);
    }

    /// Clicks the element `css` matches. A live page may re-render between
    /// finding the element and the click (a change announced by the
    /// server): the click then goes to the element as re-rendered, as a
    /// person's would.
    pub fn click_css(&self, css: &str) {
        self.on_current(css, |e| self.try_call("POST", &format!("/element/{}/click", e.0), None));
    }

    /// Runs `act` on the element `css` matches, finding it again (up to
    /// 10 s) while the one found was replaced by a re-render before `act`
    /// reached it (stale, or detached and so not interactable).
    fn on_current(&self, css: &str, mut act: impl FnMut(&Element) -> Result<Value, String>) {
        let start = Instant::now();
        loop {
            let e = self.find(css);
            match act(&e) {
                Ok(_) => return,
                Err(why) if is_rerendered(&why) && start.elapsed() < Duration::from_secs(10) => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(why) => panic!("WebDriver on `{css}` failed: {why}"),
            }
        }
    }

    fn try_call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let body = body.or_else(|| (method == "POST").then(|| json!({})));
        let r = http::request(&self.addr, method, &format!("/session/{}{path}", self.session), body.as_ref());
        if r.status < 300 {
            Ok(r.body["value"].clone())
        } else {
            Err(r.text)
        }
    }

    /// The element's text; empty when the element went stale (the page
    /// re-rendered), so waits simply look again.
    pub fn text(&self, e: &Element) -> String {
        let r = http::request(&self.addr, "GET", &format!("/session/{}/element/{}/text", self.session, e.0), None);
        r.body["value"].as_str().unwrap_or_default().to_owned()
    }

    /// An attribute; `None` also when the element went stale (the page
    /// re-rendered), so waits simply look again.
    pub fn attribute(&self, e: &Element, name: &str) -> Option<String> {
        self.read(&format!("/element/{}/attribute/{name}", e.0))
    }

    /// A DOM property (e.g. an input's current `value`); `None` also when
    /// the element went stale.
    pub fn property(&self, e: &Element, name: &str) -> Option<String> {
        self.read(&format!("/element/{}/property/{name}", e.0))
    }

    fn read(&self, path: &str) -> Option<String> {
        match self.try_call("GET", path, None) {
            Ok(v) => v.as_str().map(str::to_owned),
            Err(why) if is_rerendered(&why) => None,
            Err(why) => panic!("WebDriver GET {path} failed: {why}"),
        }
    }

    /// The browser's Back button.
    pub fn back(&self) {
        self.call("POST", "/back", Some(json!({})));
    }

    /// Sizes the browser window.
    pub fn set_window(&self, width: u32, height: u32) {
        self.call("POST", "/window/rect", Some(json!({"width": width, "height": height})));
    }

    /// Reloads the page, as the browser's reload button does.
    pub fn refresh(&self) {
        self.call("POST", "/refresh", Some(json!({})));
    }

    /// The page's URL.
    pub fn url(&self) -> String {
        self.call("GET", "/url", None).as_str().unwrap_or_default().to_owned()
    }

    /// Whether a checkbox (or option) is checked; false when the element
    /// went stale (the page re-rendered), so waits simply look again.
    pub fn is_selected(&self, e: &Element) -> bool {
        self.try_call("GET", &format!("/element/{}/selected", e.0), None)
            .map(|v| v.as_bool().unwrap_or(false))
            .unwrap_or_else(|why| if is_rerendered(&why) { false } else { panic!("WebDriver selected failed: {why}") })
    }

    /// Empties an input or text area.
    pub fn clear(&self, e: &Element) {
        self.call("POST", &format!("/element/{}/clear", e.0), Some(json!({})));
    }

    /// Replaces the text of an input or text area.
    /// (Found again when a re-render replaced it, as in [`Self::click_css`].)
    pub fn fill(&self, css: &str, text: &str) {
        self.on_current(css, |e| {
            self.try_call("POST", &format!("/element/{}/clear", e.0), Some(json!({})))?;
            self.try_call("POST", &format!("/element/{}/value", e.0), Some(json!({"text": text})))
        });
    }

    pub fn is_enabled(&self, e: &Element) -> bool {
        self.call("GET", &format!("/element/{}/enabled", e.0), None).as_bool().unwrap_or(false)
    }

    /// Waits until `probe` holds, reloading nothing.
    pub fn wait_until(&self, what: &str, mut probe: impl FnMut(&Browser) -> bool) {
        self.wait_seeing(what, |b| if probe(b) { Ok(()) } else { Err(String::new()) });
    }

    /// Waits until `probe` answers `Ok`, reloading nothing; a time-out
    /// names what the page showed last (the `Err` it gave).
    pub fn wait_seeing(&self, what: &str, mut probe: impl FnMut(&Browser) -> Result<(), String>) {
        let start = Instant::now();
        while let Err(seen) = probe(self) {
            let shown = if seen.is_empty() { String::new() } else { format!("; the page shows {seen:?}") };
            assert!(start.elapsed() < Duration::from_secs(15), "timed out waiting for {what}{shown}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Saves a PNG screenshot of the page.
    pub fn screenshot(&self, path: &Path) {
        let b64 = self.call("GET", "/screenshot", None);
        let png = decode_base64(b64.as_str().unwrap_or_default());
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = http::request(&self.addr, "DELETE", &format!("/session/{}", self.session), None);
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn decode_base64(s: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for v in s.bytes().filter_map(value) {
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// Whether a WebDriver error says the element was replaced by a re-render:
/// stale, or detached and so not interactable.
fn is_rerendered(why: &str) -> bool {
    why.contains("stale element reference") || why.contains("element not interactable")
}
