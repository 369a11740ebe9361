//! A test environment (temp folder, connectors folder, database) and a
//! daemon process started in it.

use crate::artifacts::artifacts;
use crate::http::{self, Response};
use crate::postgres::TestDatabase;
use bus_core::db::{Database, Location};
use bus_core::sql::Conn;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use tempfile::TempDir;

/// A temp folder with a connectors folder, a database and a `bus.toml`.
pub struct TestEnv {
    pub dir: TempDir,
    pub connectors_dir: PathBuf,
    /// The SQLite file (unused on PostgreSQL).
    pub db_path: PathBuf,
    pub config_path: PathBuf,
    /// Where the daemon's database is.
    pub database: Location,
    /// The PostgreSQL database of this test, dropped with it.
    _postgres: Option<TestDatabase>,
}

/// Which engine the suite's databases use: `BUS_TEST_BACKEND=postgres`
/// gives each test a database of its own on the test cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn current() -> Backend {
        match std::env::var("BUS_TEST_BACKEND").as_deref() {
            Ok("postgres") => Backend::Postgres,
            Ok("sqlite") | Err(_) => Backend::Sqlite,
            Ok(other) => panic!("BUS_TEST_BACKEND must be sqlite or postgres, not `{other}`"),
        }
    }
}

impl Default for TestEnv {
    fn default() -> Self {
        Self::new()
    }
}

impl TestEnv {
    /// A new environment with a fresh database (the sample connector is
    /// registered there, disabled) and an empty connectors folder.
    pub fn new() -> TestEnv {
        Self::with_backend(Backend::current())
    }

    /// A new environment on the given engine, whatever the suite's pass.
    pub fn with_backend(backend: Backend) -> TestEnv {
        match backend {
            Backend::Sqlite => Self::on(None),
            Backend::Postgres => Self::on(Some(crate::postgres::database())),
        }
    }

    /// A new environment on a PostgreSQL server of the test's own (see
    /// [`crate::postgres::PrivateServer`]).
    pub fn on_server(server: &crate::postgres::PrivateServer) -> TestEnv {
        Self::on(Some(server.database()))
    }

    /// A new environment on a PostgreSQL database reached by its `url` (a
    /// URL with TLS parameters, say).
    pub fn on_database(database: TestDatabase) -> TestEnv {
        Self::on(Some(database))
    }

    /// A new environment on `postgres` (its database), or on a SQLite file.
    fn on(postgres: Option<TestDatabase>) -> TestEnv {
        artifacts();
        let dir = tempfile::tempdir().expect("a temp folder");
        let connectors_dir = dir.path().join("connectors");
        std::fs::create_dir_all(&connectors_dir).unwrap();
        let db_path = dir.path().join("bus.db");
        let database = match &postgres {
            None => Location::File(db_path.clone()),
            Some(db) => Location::parse(&db.url),
        };
        Database::open_at(&database).expect("the database opens");
        let setting = match &database {
            Location::File(_) => "bus.db".to_owned(),
            Location::Postgres(url) => url.clone(),
            Location::Memory(_) => unreachable!("a test's daemon keeps its database in a file or on a server"),
        };
        let config_path = dir.path().join("bus.toml");
        std::fs::write(
            &config_path,
            format!(
                "database = \"{setting}\"\nconnectors_dir = \"connectors\"\nstate_dir = \"state\"\n\
                 listen = \"127.0.0.1:0\"\nwatch_interval_ms = 100\n\n\
                 [outgoing]\nretry_base_ms = 100\nretry_max_ms = 400\nidle_poll_ms = 200\n"
            ),
        )
        .unwrap();
        let env = TestEnv { dir, connectors_dir, db_path, config_path, database, _postgres: postgres };
        // Unset: the shipped default (`process`). The suite's later passes
        // set `in-process`, and `process-batched` (8 tasks per request).
        match std::env::var("BUS_TEST_ISOLATION").as_deref() {
            Ok("process-batched") => env.isolate("[isolation]\nmode = \"process\"\nbatch_size = 8"),
            Ok(mode) => env.isolate(&format!("isolation = \"{mode}\"")),
            Err(_) => {}
        }
        env
    }

    /// Replaces the `isolation` entry of `bus.toml`: `isolation = "…"`, or an
    /// `[isolation]` section (its lines given after the header).
    pub fn isolate(&self, entry: &str) {
        let text = std::fs::read_to_string(&self.config_path).unwrap();
        let mut kept = Vec::new();
        let mut in_section = false;
        for line in text.lines() {
            if line.starts_with('[') {
                in_section = line.trim() == "[isolation]";
            }
            if in_section || line.starts_with("isolation =") {
                continue;
            }
            kept.push(line);
        }
        std::fs::write(&self.config_path, kept.join("\n") + "\n").unwrap();
        match entry.strip_prefix("[isolation]") {
            Some(section) => {
                let mut text = std::fs::read_to_string(&self.config_path).unwrap();
                text.push_str(&format!("\n[isolation]\n{}\n", section.trim()));
                std::fs::write(&self.config_path, text).unwrap();
            }
            None => self.configure(entry),
        }
    }

    /// Copies a built library into the connectors folder under `file_stem`
    /// (e.g. `install("testkit_connector", "echo")` → `libecho.so`).
    pub fn install(&self, lib_name: &str, file_stem: &str) -> PathBuf {
        let target = self.library_path(file_stem);
        std::fs::copy(artifacts().library(lib_name), &target).expect("the library copies");
        target
    }

    /// The path a library named `file_stem` has in the connectors folder.
    pub fn library_path(&self, file_stem: &str) -> PathBuf {
        self.connectors_dir.join(format!("{}{file_stem}{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX))
    }

    /// A separate connection, as `sqlite3` or `psql` would be (no bus
    /// pragmas, no bus functions).
    pub fn sql(&self) -> Conn {
        match &self.database {
            Location::File(path) => {
                let c = rusqlite::Connection::open(path).unwrap();
                c.busy_timeout(Duration::from_secs(5)).unwrap();
                Conn::from(c)
            }
            Location::Postgres(url) => Conn::postgres(url).unwrap(),
            Location::Memory(_) => unreachable!("a test's daemon keeps its database in a file or on a server"),
        }
    }

    /// Panics unless the database is intact: SQLite's own checks (pages,
    /// foreign keys), then on either engine the queue's invariants (no task
    /// without a relation, no relation without its task or connector).
    pub fn check_integrity(&self) {
        let sql = self.sql();
        if self.backend() == Backend::Sqlite {
            let ok: String = sql.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
            assert_eq!(ok, "ok");
            let fk: i64 = sql.query_row("SELECT COUNT(*) FROM pragma_foreign_key_check", [], |r| r.get(0)).unwrap();
            assert_eq!(fk, 0, "foreign keys hold");
        }
        let count = |q: &str| -> i64 { sql.query_row(q, [], |r| r.get(0)).unwrap() };
        let orphans = count(
            "SELECT COUNT(*) FROM Integration_Task t WHERE NOT EXISTS (SELECT 1 FROM Integration_Synchronization s \
             WHERE s.SynchronizationTaskID = t.TaskID AND s.SynchronizationIsInbound = t.TaskIsInbound)",
        );
        assert_eq!(orphans, 0, "every task has a relation");
        let dangling = count(
            "SELECT COUNT(*) FROM Integration_Synchronization s WHERE NOT EXISTS \
             (SELECT 1 FROM Integration_Task t WHERE t.TaskID = s.SynchronizationTaskID) \
             OR NOT EXISTS (SELECT 1 FROM Integration_Connector c WHERE c.ConnectorID = s.SynchronizationConnectorID)",
        );
        assert_eq!(dangling, 0, "every relation has its task and its connector");
    }

    pub fn backend(&self) -> Backend {
        match self.database {
            Location::File(_) | Location::Memory(_) => Backend::Sqlite,
            Location::Postgres(_) => Backend::Postgres,
        }
    }

    /// Registers a connector with plain SQL.
    pub fn register(&self, name: &str, assembly: &str, class: &str, enabled: bool, config: &str) {
        self.sql()
            .execute(
                "INSERT INTO Integration_Connector (ConnectorName, ConnectorDisplayName, ConnectorAssemblyName, \
                 ConnectorClassName, ConnectorEnabled, ConnectorConfig) VALUES ($1, $1, $2, $3, $4, $5)",
                bus_core::params![name, assembly, class, enabled, config],
            )
            .unwrap();
    }

    /// Appends lines to the top level of `bus.toml` (before its sections).
    pub fn configure(&self, lines: &str) {
        let text = std::fs::read_to_string(&self.config_path).unwrap();
        let (top, rest) =
            text.split_once("\n[").map(|(t, r)| (t.to_owned(), format!("\n[{r}"))).unwrap_or((text, String::new()));
        std::fs::write(&self.config_path, format!("{top}\n{lines}\n{rest}")).unwrap();
    }

    /// Starts the daemon and expects it to refuse to start; returns its log.
    pub fn start_fails(&self) -> String {
        let out = Command::new(&artifacts().daemon)
            .arg("--config")
            .arg(&self.config_path)
            .arg("serve")
            .stdin(Stdio::null())
            .output()
            .expect("the daemon runs");
        assert!(!out.status.success(), "the daemon started: {}", String::from_utf8_lossy(&out.stdout));
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Registers a `ScriptedConnector` of the testkit (installing the
    /// library when needed) with `script` as its configuration.
    pub fn scripted(&self, name: &str, script: Value) {
        if !self.library_path("testkit").exists() {
            self.install("testkit_connector", "testkit");
        }
        self.register(name, "testkit", "ScriptedConnector", true, &script.to_string());
    }

    /// Changes settings with plain SQL (`name` as in the API).
    pub fn set_setting(&self, name: &str, on: bool) {
        let key = bus_core::settings::KEYS.iter().find(|(n, _)| *n == name).expect("a setting name").1;
        self.sql()
            .execute(
                "UPDATE CMS_SettingsKey SET KeyValue = $1 WHERE KeyName = $2",
                bus_core::params![if on { "True" } else { "False" }, key],
            )
            .unwrap();
    }

    /// Runs `bus-daemon <args>` against this environment's configuration.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(&artifacts().daemon)
            .arg("--config")
            .arg(&self.config_path)
            .args(args)
            .output()
            .expect("the daemon binary runs")
    }

    /// Every report a scripted connector wrote (event-log descriptions that
    /// are JSON), in the order they were written — all of them, read with
    /// SQL (the API pages at 500).
    pub fn all_reports(&self, connector: &str) -> Vec<Value> {
        let sql = match &self.database {
            Location::Postgres(url) => {
                crate::wait_for("a session for the test's reads", Duration::from_secs(60), || Conn::postgres(url).ok())
            }
            Location::File(_) | Location::Memory(_) => self.sql(),
        };
        let mut stmt = sql.prepare("SELECT Description FROM CMS_EventLog WHERE Source = $1 ORDER BY EventID").unwrap();
        stmt.query_map([connector], |r| r.get::<String>(0))
            .unwrap()
            .filter_map(|d| serde_json::from_str::<Value>(&d.unwrap()).ok())
            .collect()
    }

    /// What a scripted connector was called with, one entry per call: the
    /// time the call started (µs), its fencing token and its task ID, in
    /// the order the calls started (read from the shared event log).
    /// On a server at its connection limit, it waits for a session.
    pub fn calls(&self, connector: &str) -> Vec<(u64, Option<i64>, i64)> {
        let sql = match &self.database {
            Location::Postgres(url) => {
                crate::wait_for("a session for the test's reads", Duration::from_secs(60), || Conn::postgres(url).ok())
            }
            Location::File(_) | Location::Memory(_) => self.sql(),
        };
        let mut stmt = sql.prepare("SELECT Description FROM CMS_EventLog WHERE Source = $1 ORDER BY EventID").unwrap();
        let mut calls: Vec<(u64, Option<i64>, i64)> = stmt
            .query_map([connector], |r| r.get::<String>(0))
            .unwrap()
            .filter_map(|d| {
                let report = serde_json::from_str::<Value>(&d.unwrap()).ok()?;
                Some((report["called_at_us"].as_u64()?, report["fencing_token"].as_i64(), report["task_id"].as_i64()?))
            })
            .collect();
        calls.sort_unstable();
        calls
    }

    /// Appends a section to `bus.toml` (`[name]` and its lines).
    pub fn configure_section(&self, name: &str, lines: &str) {
        let mut text = std::fs::read_to_string(&self.config_path).unwrap();
        text.push_str(&format!("\n[{name}]\n{}\n", lines.trim()));
        std::fs::write(&self.config_path, text).unwrap();
    }

    /// Points `bus.toml` (and [`Self::sql`]) at another database.
    pub fn use_database(&mut self, location: Location) {
        let setting = match &location {
            Location::File(p) => p.display().to_string(),
            Location::Postgres(url) => url.clone(),
            Location::Memory(_) => unreachable!("a test's daemon keeps its database in a file or on a server"),
        };
        let text = std::fs::read_to_string(&self.config_path).unwrap();
        let text: Vec<String> = text
            .lines()
            .map(|l| if l.starts_with("database =") { format!("database = \"{setting}\"") } else { l.to_owned() })
            .collect();
        std::fs::write(&self.config_path, text.join("\n") + "\n").unwrap();
        self.database = location;
    }

    /// Starts a daemon on a free port.
    pub fn start_with(&self, settle: Settle) -> Daemon {
        static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log_path = self.dir.path().join(format!("daemon-{}-{n}.log", std::process::id()));
        let log = std::fs::File::create(&log_path).unwrap();
        let mut child = Command::new(&artifacts().daemon)
            .arg("--config")
            .arg(&self.config_path)
            .arg("serve")
            .env("RUST_LOG", std::env::var("BUS_TEST_LOG").unwrap_or_else(|_| "info".into()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("the daemon starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("listening on http://") {
                    let _ = tx.send((url.to_owned(), true));
                } else if let Some(url) = line.strip_prefix("listening on https://") {
                    let _ = tx.send((url.to_owned(), false));
                }
            }
        });
        let (addr, plain) = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(listening) => listening,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "the daemon did not start; its log:\n{}",
                    std::fs::read_to_string(&log_path).unwrap_or_default()
                );
            }
        };
        let daemon = Daemon { child, addr, log_path };
        if plain && settle == Settle::Wait {
            daemon.settled();
        }
        daemon
    }

    /// Starts a daemon on a free port and waits until every connector it
    /// runs has returned from its create and init.
    pub fn start(&self) -> Daemon {
        self.start_with(Settle::Wait)
    }

    /// Starts a daemon and returns as soon as it listens (a connector may
    /// still be starting).
    pub fn start_unsettled(&self) -> Daemon {
        self.start_with(Settle::DontWait)
    }
}

/// Whether [`TestEnv::start_with`] waits for the connectors to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    Wait,
    DontWait,
}

/// A running daemon; killed when dropped.
pub struct Daemon {
    child: Child,
    pub addr: String,
    pub log_path: PathBuf,
}

impl Daemon {
    pub fn get(&self, path: &str) -> Response {
        http::request(&self.addr, "GET", path, None)
    }
    pub fn post(&self, path: &str, body: &Value) -> Response {
        http::request(&self.addr, "POST", path, Some(body))
    }
    pub fn put(&self, path: &str, body: &Value) -> Response {
        http::request(&self.addr, "PUT", path, Some(body))
    }
    pub fn delete(&self, path: &str) -> Response {
        http::request(&self.addr, "DELETE", path, None)
    }

    /// Waits until no connector is starting (their create and init ran; a
    /// reinitialization publishes without those that take longer).
    pub fn settled(&self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let health = self.get("/health");
            let starting =
                health.body["connectors"].as_object().is_some_and(|all| all.values().any(|c| c["starting"] == true));
            if health.status != 200 || !starting {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "connectors still starting after 60 s: {}", health.text);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The `/api/connectors` row of one connector, if registered.
    pub fn connector(&self, name: &str) -> Option<Value> {
        let r = self.get("/api/connectors");
        assert_eq!(r.status, 200, "{}", r.text);
        r.body.as_array().unwrap().iter().find(|c| c["name"] == name).cloned()
    }

    /// The event log, newest first (up to 500 rows).
    pub fn events(&self, query: &str) -> Vec<Value> {
        let r = self.get(&format!("/api/eventlog?limit=500{query}"));
        assert_eq!(r.status, 200, "{}", r.text);
        r.body["items"].as_array().unwrap().clone()
    }

    /// The reports a scripted connector wrote, oldest first.
    pub fn reports(&self, connector: &str) -> Vec<Value> {
        let mut rows = self.events(&format!("&source={connector}"));
        rows.reverse();
        rows.iter().filter_map(|e| serde_json::from_str(e["description"].as_str()?).ok()).collect()
    }

    /// Creates an object and returns the change result.
    pub fn create(&self, object_type: &str, object: Value) -> Value {
        let r = self.post(&format!("/api/objects/{object_type}"), &object);
        assert_eq!(r.status, 201, "creating {object_type}: {}", r.text);
        r.body
    }

    /// A page of a queue.
    pub fn queue(&self, direction: &str, query: &str) -> Vec<Value> {
        let r = self.get(&format!("/api/tasks/{direction}?limit=1000{query}"));
        assert_eq!(r.status, 200, "{}", r.text);
        r.body["items"].as_array().unwrap().clone()
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Kills the daemon at once (SIGKILL), as a crash would.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Asks the daemon to stop (SIGTERM) and waits for it to exit.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        crate::wait_for("the daemon to exit", Duration::from_secs(20), || self.child.try_wait().ok().flatten())
    }

    /// Sends the daemon a signal (`STOP` stalls it, `CONT` resumes it).
    pub fn signal(&self, signal: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_raw(i32::try_from(self.child.id()).unwrap()).unwrap();
        rustix::process::kill_process(pid, signal).unwrap();
    }

    /// The daemon's process ID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// How many threads the daemon runs now (Linux).
    pub fn threads(&self) -> usize {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        status.lines().find_map(|l| l.strip_prefix("Threads:")).and_then(|n| n.trim().parse().ok()).unwrap_or(0)
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().ok().flatten().is_none()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let stacks = if std::thread::panicking() { self.thread_stacks() } else { String::new() };
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- daemon log ---\n{}", self.log());
            eprintln!("--- daemon threads at the failure ---\n{stacks}");
        }
    }
}

impl Daemon {
    /// Where each of the daemon's threads stands (gdb's backtraces, when
    /// gdb is installed): what a failed test saw the daemon doing — a
    /// thread waiting forever shows here, not in the log.
    fn thread_stacks(&self) -> String {
        let out = Command::new("timeout")
            .args(["60", "gdb", "-p", &self.child.id().to_string(), "-batch", "-nx", "-ex", "thread apply all bt 30"])
            .stdin(std::process::Stdio::null())
            .output();
        match out {
            Ok(o) if !o.stdout.is_empty() => String::from_utf8_lossy(&o.stdout).into_owned(),
            Ok(o) => format!("(no backtraces: gdb {}: {})", o.status, String::from_utf8_lossy(&o.stderr).trim()),
            Err(e) => format!("(no backtraces: {e})"),
        }
    }
}

/// Reads a file's text, for assertions.
pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// No call started under a lease epoch lower than one already used: once a
/// daemon took the queue over, the one it took it from made no new call.
pub fn assert_fenced_in_call_order(calls: &[(u64, Option<i64>, i64)], what: &str) {
    let tokens: Vec<i64> = calls.iter().map(|(_, t, _)| t.expect("every call carries its lease epoch")).collect();
    let back = tokens.windows(2).position(|w| w[1] < w[0]);
    assert!(
        back.is_none(),
        "{what}: a call with an older lease epoch started after a newer one: {:?}",
        &calls[back.unwrap().saturating_sub(2)..(back.unwrap() + 3).min(calls.len())]
    );
}
