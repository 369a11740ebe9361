//! A throwaway PostgreSQL cluster for the tests, from the installed server
//! binaries, shared by every test process of a run (nextest runs each test
//! in a process of its own), one database per test.
//!
//! `BUS_TEST_POSTGRES=postgres://…` uses that server instead.
//!
//! Sharing: each test process holds a shared lock on `users.lock` for its
//! life; the first one to find no server (under `start.lock`) runs
//! `initdb` (as the `postgres` user when run as root: `initdb` refuses
//! root) and `pg_ctl start` with data and socket in the cluster folder,
//! `fsync=off`, loopback only, and starts a reaper. The reaper stops the
//! server and deletes the folder once no test has held `users.lock` for
//! [`IDLE_SECONDS`] seconds in a row; it stops while holding the lock
//! exclusively, so a test arriving then waits and starts a new cluster.

use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

const IDLE_SECONDS: u32 = 20;
const BIN_DIRS: &[&str] =
    &["/usr/local/bin", "/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/17/bin"];

/// A database of one test; dropped with it.
pub struct TestDatabase {
    pub url: String,
    admin_url: String,
    pub name: String,
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Ok(admin) = bus_core::sql::Conn::postgres(&self.admin_url) {
            let _ = admin.execute_batch(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
        }
    }
}

/// A new empty database.
pub fn database() -> TestDatabase {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let server = server();
    let name = format!("bus_test_{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
    let admin = bus_core::sql::Conn::postgres(&server.admin_url)
        .unwrap_or_else(|e| panic!("cannot connect to the test PostgreSQL server {}: {e}", server.admin_url));
    admin.execute_batch(&format!("CREATE DATABASE {name}")).expect("the test database is created");
    TestDatabase { url: server.url_of(&name), admin_url: server.admin_url.clone(), name }
}

struct Server {
    /// The URL without its database name (`postgres://user@host:port`).
    base: String,
    /// A URL to create databases through.
    admin_url: String,
    /// Held for the life of the process: the cluster is in use.
    _users: Option<File>,
}

impl Server {
    fn url_of(&self, database: &str) -> String {
        format!("{}/{database}", self.base)
    }
}

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| match std::env::var("BUS_TEST_POSTGRES") {
        Ok(url) => {
            let base = match url.rfind('/') {
                Some(i) if i > url.find("://").map_or(0, |s| s + 2) => url[..i].to_owned(),
                _ => url.clone(),
            };
            Server { admin_url: url, base, _users: None }
        }
        Err(_) => start_shared_cluster(),
    })
}

fn bin(name: &str) -> PathBuf {
    BIN_DIRS
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("the PostgreSQL server binary `{name}` is not installed (looked in {BIN_DIRS:?}); `.ci/run` installs the `postgresql` package"))
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// `program args` as the user PostgreSQL runs as.
fn as_server_user(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn lock(path: &Path, exclusive: bool) -> File {
    let f = File::options().create(true).truncate(false).write(true).open(path).expect("the lock file opens");
    let op = if exclusive { rustix::fs::FlockOperation::LockExclusive } else { rustix::fs::FlockOperation::LockShared };
    rustix::fs::flock(&f, op).expect("the lock is taken");
    f
}

fn start_shared_cluster() -> Server {
    let dir = std::env::temp_dir().join(format!("bus-test-postgres-{}", rustix::process::geteuid().as_raw()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let users = lock(&dir.join("users.lock"), false);
    let start = lock(&dir.join("start.lock"), true);
    let port = match std::fs::read_to_string(dir.join("port")).ok().and_then(|p| p.trim().parse::<u16>().ok()) {
        Some(port) if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() => port,
        _ => init_and_start(&dir),
    };
    drop(start);
    let base = format!("postgres://postgres@127.0.0.1:{port}");
    Server { admin_url: format!("{base}/postgres"), base, _users: Some(users) }
}

/// A new cluster in `data` (an empty folder made here), owned by the
/// server's user.
fn initdb(data: &Path) {
    std::fs::create_dir_all(data).unwrap();
    if is_root() {
        let status = Command::new("chown").arg("postgres").arg(data).status().expect("chown runs");
        assert!(status.success(), "cannot give {} to the postgres user", data.display());
    }
    let out = as_server_user(&bin("initdb"))
        .arg("-D")
        .arg(data)
        .args(["--auth=trust", "-U", "postgres", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"])
        .stdin(Stdio::null())
        .output()
        .expect("initdb runs");
    assert!(out.status.success(), "initdb failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// `pg_ctl <action>` on the cluster in `data`, waiting for it to finish;
/// a failure shows the server's log.
fn pg_ctl(data: &Path, log: &Path, options: &str, action: &[&str]) {
    let out = as_server_user(&bin("pg_ctl"))
        .arg("-D")
        .arg(data)
        .arg("-l")
        .arg(log)
        .args(["-o", options, "-w", "-t", "60"])
        .args(action)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("pg_ctl runs");
    assert!(
        out.status.success(),
        "pg_ctl {action:?} failed: {}{}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

fn init_and_start(dir: &Path) -> u16 {
    let data = dir.join("data");
    let _ = std::fs::remove_dir_all(&data);
    let _ = std::fs::remove_file(dir.join("port"));
    initdb(&data);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let options = format!(
        "-k {} -p {port} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
         -c full_page_writes=off -c max_connections=300 -c shared_buffers=64MB",
        dir.display()
    );
    pg_ctl(&data, &dir.join("server.log"), &options, &["start"]);
    std::fs::write(dir.join("port"), port.to_string()).unwrap();
    spawn_reaper(dir, &data);
    port
}

/// Stops the cluster when no test has used it for a while (see the module
/// documentation); detached, with no handle on the test's output.
fn spawn_reaper(dir: &Path, data: &Path) {
    let runas = if is_root() { "runuser -u postgres -- " } else { "" };
    let script = format!(
        "idle=0; while :; do sleep 1; \
           if flock -n -x '{users}' true; then idle=$((idle+1)); else idle=0; fi; \
           if [ $idle -ge {IDLE_SECONDS} ]; then \
             if flock -n -x '{users}' sh -c \"{runas}'{pg_ctl}' -D '{data}' -m immediate stop >/dev/null 2>&1; rm -rf '{data}' '{port}'\"; \
             then exit 0; else idle=0; fi; \
           fi; \
         done",
        users = dir.join("users.lock").display(),
        pg_ctl = bin("pg_ctl").display(),
        data = data.display(),
        port = dir.join("port").display(),
    );
    // `setsid` forks the reaper off and exits: waiting for it returns at once.
    let status = Command::new("setsid")
        .args(["--fork", "sh", "-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("the cluster reaper starts");
    assert!(status.success(), "the cluster reaper did not start");
}

/// A PostgreSQL server of one test's own, for the faults that hit a whole
/// server: a restart, a stop, a freeze, running out of connections. Made
/// by `initdb` in a temp folder (a few seconds); stopped at once and
/// deleted when dropped.
pub struct PrivateServer {
    dir: tempfile::TempDir,
    data: PathBuf,
    options: String,
    base: String,
    /// The server's certificate and key, with TLS on.
    _keys: Option<tempfile::TempDir>,
}

impl PrivateServer {
    /// A new server; `settings` are more `-c name=value` options.
    pub fn start(settings: &[&str]) -> PrivateServer {
        let dir = tempfile::tempdir().expect("a temp folder");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let data = dir.path().join("data");
        initdb(&data);
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut options = format!(
            "-k {} -p {port} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c shared_buffers=32MB",
            dir.path().display()
        );
        for setting in settings {
            options.push_str(" -c ");
            options.push_str(setting);
        }
        let server =
            PrivateServer { base: format!("postgres://postgres@127.0.0.1:{port}"), dir, data, options, _keys: None };
        server.pg_ctl(&["start"]);
        server
    }

    /// A new server that takes TLS sessions (`ssl=on`) with `certs`'s
    /// server certificate; plain sessions are still taken.
    pub fn start_with_tls(certs: &crate::tls::TestCerts) -> PrivateServer {
        let keys = tempfile::tempdir().expect("a temp folder");
        std::fs::set_permissions(keys.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let (chain, key) = (keys.path().join("server.crt"), keys.path().join("server.key"));
        std::fs::copy(&certs.chain, &chain).unwrap();
        std::fs::copy(&certs.key, &key).unwrap();
        // The server reads its key only when it alone may.
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        if is_root() {
            let status = Command::new("chown").arg("postgres").arg(&chain).arg(&key).status().expect("chown runs");
            assert!(status.success(), "cannot give the server's key to the postgres user");
        }
        let mut server = PrivateServer::start(&[
            "ssl=on",
            &format!("ssl_cert_file={}", chain.display()),
            &format!("ssl_key_file={}", key.display()),
        ]);
        server._keys = Some(keys);
        server
    }

    /// The port the server listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.base.rsplit_once(':').and_then(|(_, p)| p.parse().ok()).expect("the base URL ends with the port")
    }

    fn pg_ctl(&self, action: &[&str]) {
        pg_ctl(&self.data, &self.dir.path().join("server.log"), &self.options, action);
    }

    /// A new empty database on this server.
    pub fn database(&self) -> TestDatabase {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let admin_url = format!("{}/postgres", self.base);
        let name = format!("bus_private_{}", COUNTER.fetch_add(1, Ordering::Relaxed));
        let admin = bus_core::sql::Conn::postgres(&admin_url).expect("the private server answers");
        admin.execute_batch(&format!("CREATE DATABASE {name}")).expect("the test database is created");
        TestDatabase { url: format!("{}/{name}", self.base), admin_url, name }
    }

    /// Stops the server (`-m fast`: sessions are ended, as in a restart).
    pub fn stop(&self) {
        self.pg_ctl(&["-m", "fast", "stop"]);
    }

    /// Starts the stopped server again.
    pub fn start_again(&self) {
        self.pg_ctl(&["start"]);
    }

    /// The server's processes: the postmaster and its children.
    fn processes(&self) -> Vec<i32> {
        let pid_file = std::fs::read_to_string(self.data.join("postmaster.pid")).unwrap_or_default();
        let Some(main) = pid_file.lines().next().and_then(|l| l.trim().parse::<i32>().ok()) else { return Vec::new() };
        let mut pids = vec![main];
        for entry in std::fs::read_dir("/proc").unwrap().filter_map(Result::ok) {
            let Some(pid) = entry.file_name().to_str().and_then(|p| p.parse::<i32>().ok()) else { continue };
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // The parent is the fourth field, after the command in parentheses.
            let parent =
                stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<i32>().ok());
            if parent == Some(main) {
                pids.push(pid);
            }
        }
        pids
    }

    fn signal_all(&self, signal: rustix::process::Signal) {
        for pid in self.processes() {
            if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                let _ = rustix::process::kill_process(pid, signal);
            }
        }
    }

    /// Freezes every process of the server (SIGSTOP): connections stay
    /// open, nothing answers.
    pub fn freeze(&self) {
        self.signal_all(rustix::process::Signal::STOP);
    }

    /// Lets a frozen server go on.
    pub fn thaw(&self) {
        self.signal_all(rustix::process::Signal::CONT);
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        self.thaw();
        let _ = as_server_user(&bin("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "stop"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
