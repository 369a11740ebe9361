//! The daemon's side of a connector in its own process: starts the
//! connector host, sends it calls — each on a socket of the calling
//! thread's own (`call_socket.rs`), read by that thread — and waits for
//! each answer at most the call timeout, serves the host requests the
//! connector makes, and notices when the process dies. A call past its deadline kills the process (here
//! a hung call *is* interrupted); a dead process fails its calls in flight
//! with the cause (`killed by signal 11 (SIGSEGV)`, `aborted`, `exited with
//! code 3`) and is started again on a later call, after a pause that
//! doubles with each crash in a row (capped).

use super::call_socket::{CallSocket, SocketError};
use super::frame::{self, Frame, Header, Outcome, Tag};
use super::platform::{self, HostProcess};
use super::pool::Pool;
use super::stderr::{self, StderrTail};
use super::ProcessConfig;
use super::{OpenAnswer, OpenRequest};
use crate::host::{self, HostServices};
use crate::lane;
use crate::state_store;
use std::collections::{HashMap, VecDeque};
use std::io::BufReader;
use std::os::unix::net::UnixStream;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};
use thiserror::Error;

/// Why a call into a connector process gave no answer.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub(crate) enum ChildError {
    /// The process died during the call (or before it could be sent).
    #[error("the connector's process {0}")]
    Crashed(String),
    /// No answer within the deadline: the process was killed.
    #[error("no answer within {} ms; the connector's process was killed and will be restarted", .0.as_millis())]
    TimedOut(Duration),
    /// The process is down after a crash and not started again yet.
    #[error("the connector's process is restarting (in {} ms) after it {cause}", .wait.as_millis())]
    Restarting { cause: String, wait: Duration },
    /// The call failed inside the connector (a panic its SDK caught).
    #[error("{0}")]
    Failed(String),
    /// The call was not made: its start deadline had passed when the
    /// process received it.
    #[error("not called: the start deadline had passed by {} ms", .late.as_millis())]
    NotStarted { late: Duration },
    /// The process could not be started or set up.
    #[error("{0}")]
    Start(String),
}

/// How long a process is given to shut down before it is killed.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// The first pause before a crashed process is started again.
const RESTART_FIRST: Duration = Duration::from_millis(100);
/// How long a process whose pipes closed is given to report its exit.
const EXIT_GRACE: Duration = Duration::from_secs(2);
/// How long an ended process's last stderr lines are waited for.
const STDERR_GRACE: Duration = Duration::from_millis(500);
/// The largest frame read from a connector process: a larger one is
/// passed over unread (its call fails, naming the size), so a connector
/// cannot make the daemon hold more than this for it.
pub(crate) const MAX_FRAME_FROM_CONNECTOR: usize = 64 * 1024 * 1024;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A connector instance that runs in a child process.
pub(crate) struct ChildConnector {
    name: String,
    open: OpenRequest,
    config: ProcessConfig,
    call_timeout: Duration,
    services: Arc<dyn HostServices>,
    /// Sent to every new process after `Open` (the instance's init).
    init: OnceLock<Vec<u8>>,
    state: Mutex<State>,
    restarts: AtomicU64,
    /// Crashes since the last call that was answered.
    crashes_in_a_row: AtomicU32,
    /// The running process's ID (0: none).
    pid: AtomicU32,
}

#[derive(Default)]
struct State {
    process: Option<Arc<Process>>,
    /// Shut down: no process is started any more.
    stopped: bool,
    /// A crashed process is not started again before this.
    not_before: Option<Instant>,
    last_cause: Option<String>,
}

impl ChildConnector {
    /// Starts the process and creates the connector in it; `Err` carries
    /// the loader's words (class not exported, constructor failed, …).
    pub(crate) fn start(
        name: &str,
        open: OpenRequest,
        config: ProcessConfig,
        call_timeout: Duration,
        services: Arc<dyn HostServices>,
    ) -> Result<ChildConnector, ChildError> {
        let me = ChildConnector {
            name: name.to_owned(),
            open,
            config,
            call_timeout,
            services,
            init: OnceLock::new(),
            state: Mutex::new(State::default()),
            restarts: AtomicU64::new(0),
            crashes_in_a_row: AtomicU32::new(0),
            pid: AtomicU32::new(0),
        };
        let process = me.spawn()?;
        lock(&me.state).process = Some(process);
        Ok(me)
    }

    /// How often the process was started again after a crash or a kill.
    pub(crate) fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }

    /// How long until the process may start again, while it is down after
    /// a crash and its pause is not over (a call now fails at once).
    pub(crate) fn down_for(&self) -> Option<Duration> {
        let st = lock(&self.state);
        if st.process.as_ref().is_some_and(|p| !p.is_dead()) {
            return None;
        }
        st.not_before.and_then(|at| at.checked_duration_since(Instant::now()))
    }

    /// How many queued tasks go to the process in one request.
    pub(crate) fn batch_size(&self) -> usize {
        self.config.batch_size
    }

    /// The operating system's process ID of the running process.
    pub(crate) fn pid(&self) -> Option<u32> {
        Some(self.pid.load(Ordering::Relaxed)).filter(|p| *p != 0)
    }

    fn spawn(&self) -> Result<Arc<Process>, ChildError> {
        let mut child = spawn_host(&self.config.program).map_err(|e| {
            ChildError::Start(format!("cannot start the connector host {}: {e}", self.config.program.display()))
        })?;
        let requests = child.take_requests();
        let pipes = child.child_mut();
        let (Some(requests), Some(stdout), Some(stderr)) = (requests, pipes.stdout.take(), pipes.stderr.take()) else {
            let _ = child.end();
            return Err(ChildError::Start("the connector host's pipes are missing".into()));
        };
        let process = Arc::new(Process {
            name: self.name.clone(),
            pid: child.id(),
            child: Mutex::new(child),
            writer: Mutex::new(requests),
            sockets: Mutex::new(Vec::new()),
            waiting: Mutex::new(HashMap::new()),
            next: AtomicU64::new(1),
            dead: OnceLock::new(),
            stderr: Arc::default(),
            killed_for: Mutex::new(None),
            host_calls: Pool::new("connector-host-request"),
            counted: AtomicBool::new(false),
        });
        let (opened_tx, opened_rx) = mpsc::sync_channel::<Vec<u8>>(1);
        stderr::spawn_reader(&self.name, stderr, process.stderr.clone());
        spawn_reader(&self.name, process.clone(), stdout, self.services.clone(), opened_tx);
        // Until the process is set up, any way out stops it (and reaps it).
        let guard = StopOnError(Some(process.clone()));
        let body = serde_json::to_vec(&self.open).expect("an open request serializes");
        process.send(Tag::Open, 0, &[&body]).map_err(ChildError::Crashed)?;
        let answer = match opened_rx.recv_timeout(self.call_timeout) {
            Ok(answer) => answer,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                process.kill("was killed: it did not open the library in time");
                return Err(ChildError::TimedOut(self.call_timeout));
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(ChildError::Crashed(process.end_within(EXIT_GRACE, "was stopped")));
            }
        };
        let answer: OpenAnswer = serde_json::from_slice(&answer).map_err(|e| {
            ChildError::Start(format!("the connector host answered the open request with nonsense: {e}"))
        })?;
        if let Some(error) = answer.error {
            return Err(ChildError::Start(error));
        }
        if let Some(init) = self.init.get() {
            // A restarted process: the instance is initialized again.
            let reply = process.call(init, self.call_timeout)?;
            if let Err(e) = connector_abi::protocol::decode_response::<connector_abi::protocol::InitResponse>(&reply) {
                return Err(ChildError::Start(format!("the restarted connector's init failed: {e:?}")));
            }
        }
        guard.disarm();
        self.pid.store(process.pid, Ordering::Relaxed);
        tracing::info!(connector = %self.name, pid = process.pid, "connector process started");
        Ok(process)
    }

    /// Sends one request document and returns the response document; a
    /// request that carries `tasks` tasks gets the call timeout for each.
    pub(crate) fn call_scaled(&self, request: &[u8], tasks: u32) -> Result<Vec<u8>, ChildError> {
        if self.init.get().is_none() && is_init(request) {
            let _ = self.init.set(request.to_vec());
        }
        let process = self.running()?;
        match process.call(request, self.call_timeout.saturating_mul(tasks.max(1))) {
            Ok(bytes) => {
                self.crashes_in_a_row.store(0, Ordering::Relaxed);
                Ok(bytes)
            }
            Err(ChildError::Failed(m)) => {
                self.crashes_in_a_row.store(0, Ordering::Relaxed);
                Err(ChildError::Failed(m))
            }
            Err(e) => {
                self.crashed(&process, &e);
                Err(e)
            }
        }
    }

    /// The running process, started again if it died and its pause is over.
    fn running(&self) -> Result<Arc<Process>, ChildError> {
        let mut st = lock(&self.state);
        if st.stopped {
            return Err(ChildError::Crashed("was shut down".into()));
        }
        if let Some(p) = st.process.as_ref().filter(|p| !p.is_dead()) {
            return Ok(p.clone());
        }
        if let Some(at) = st.not_before {
            if let Some(wait) = at.checked_duration_since(Instant::now()) {
                let cause = st.last_cause.clone().unwrap_or_else(|| "stopped".into());
                return Err(ChildError::Restarting { cause, wait });
            }
        }
        // Started under the lock: calls arriving meanwhile wait for it.
        let process = match self.spawn() {
            Ok(p) => p,
            Err(e) => {
                let crashes = self.crashes_in_a_row.fetch_add(1, Ordering::Relaxed).saturating_add(1);
                st.not_before = Some(Instant::now() + self.pause(crashes));
                st.last_cause = Some(e.to_string());
                return Err(e);
            }
        };
        self.restarts.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(connector = %self.name, restarts = self.restarts(), "connector process restarted");
        st.process = Some(process.clone());
        Ok(process)
    }

    fn crashed(&self, process: &Arc<Process>, e: &ChildError) {
        // Counted once per process, however many calls it failed.
        if process.counted.swap(true, Ordering::SeqCst) {
            return;
        }
        self.pid.store(0, Ordering::Relaxed);
        let mut st = lock(&self.state);
        let crashes = self.crashes_in_a_row.fetch_add(1, Ordering::Relaxed).saturating_add(1);
        let pause = self.pause(crashes);
        st.not_before = Some(Instant::now() + pause);
        st.last_cause = Some(match e {
            ChildError::Crashed(cause) => cause.clone(),
            other => format!("was killed ({other})"),
        });
        tracing::error!(connector = %self.name, error = %e, restart_in_ms = pause.as_millis() as u64, "connector process lost");
    }

    /// The pause before the next start after `crashes` crashes in a row.
    fn pause(&self, crashes: u32) -> Duration {
        let factor = 1u32.checked_shl(crashes.saturating_sub(1).min(20)).unwrap_or(u32::MAX);
        RESTART_FIRST.saturating_mul(factor).min(self.config.restart_max)
    }

    /// Asks the connector to shut down and waits a little for the process
    /// to end; kills it otherwise.
    pub(crate) fn shutdown(&self) {
        let process = {
            let mut st = lock(&self.state);
            st.stopped = true;
            st.process.take()
        };
        self.pid.store(0, Ordering::Relaxed);
        let Some(process) = process else { return };
        if process.is_dead() {
            return;
        }
        let _ = process.ask(Tag::Shutdown, SHUTDOWN_GRACE);
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        while Instant::now() < deadline {
            if lock(&process.child).has_ended() {
                // Reaped, with whatever it left running.
                let _ = lock(&process.child).end();
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        process.kill("was killed: it did not exit after shutdown");
    }
}

impl Drop for ChildConnector {
    fn drop(&mut self) {
        if let Some(process) = lock(&self.state).process.take() {
            process.kill("was stopped");
        }
    }
}

/// Starts a connector host. Every host is started from one thread that
/// lives as long as the daemon: the kernel's parent-death signal, which the
/// host arms, fires when the *thread* that started it ends, and the threads
/// that reload connectors (HTTP blocking threads, workers) come and go.
fn spawn_host(program: &std::path::Path) -> std::io::Result<HostProcess> {
    type Request = (std::path::PathBuf, mpsc::SyncSender<std::io::Result<HostProcess>>);
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Request>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Request>();
        let started = std::thread::Builder::new().name("connector-spawner".into()).spawn(move || {
            for (program, reply) in rx {
                let child = HostProcess::spawn(&program, super::HOST_COMMAND);
                let _ = reply.send(child);
            }
        });
        if let Err(e) = started {
            tracing::error!(error = %e, "cannot start the thread that starts connector processes");
        }
        Mutex::new(tx)
    });
    let (reply, answer) = mpsc::sync_channel(1);
    lock(spawner)
        .send((program.to_owned(), reply))
        .map_err(|_| std::io::Error::other("the thread that starts connector processes is gone"))?;
    answer.recv().map_err(|_| std::io::Error::other("the thread that starts connector processes is gone"))?
}

fn is_init(request: &[u8]) -> bool {
    connector_abi::protocol::parse_request(request).is_ok_and(|env| env.kind == connector_abi::protocol::kind::INIT)
}

/// How a process's output ended.
enum Ending {
    /// The stream closed (the process is exiting, or closed its stdout).
    Closed,
    /// It sent something that is not a frame of the protocol.
    Garbled,
}

/// A call waiting for its reply.
struct Waiting {
    /// Where the answer goes, for a call whose reply comes on stdout
    /// (`Shutdown`); a call on a socket reads its own reply.
    answer: Option<mpsc::SyncSender<Result<Vec<u8>, ChildError>>>,
    /// The lane the call was made from, so host requests made during it
    /// count as nested in that lane.
    lane: usize,
    /// The state writes of the delivery call it is, so state requests made
    /// during it join them.
    state: Option<Arc<state_store::Pending>>,
}

/// One running connector host.
struct Process {
    /// The connector's name, for the log.
    name: String,
    pid: u32,
    child: Mutex<HostProcess>,
    /// The host's stdin: frames, and the call sockets passed with them.
    writer: Mutex<UnixStream>,
    /// Call sockets not in use (one is taken per call, and made when none
    /// is free).
    sockets: Mutex<Vec<CallSocket>>,
    /// Calls waiting for their reply, by number.
    waiting: Mutex<HashMap<u64, Waiting>>,
    next: AtomicU64,
    /// Why the process is gone, once it is.
    dead: OnceLock<String>,
    /// The last lines it wrote to stderr.
    stderr: Arc<StderrTail>,
    /// Set before the daemon kills it, to name the reason.
    killed_for: Mutex<Option<String>>,
    /// Threads serving the host requests of the connector (a request may
    /// call back into the connector, so none waits for another).
    host_calls: Pool,
    /// Its loss was counted as a crash.
    counted: AtomicBool,
}

/// Stops a process that is not set up yet when dropped armed.
struct StopOnError(Option<Arc<Process>>);

impl StopOnError {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for StopOnError {
    fn drop(&mut self) {
        if let Some(process) = self.0.take() {
            process.kill("was stopped: it could not be set up");
        }
    }
}

impl Process {
    fn is_dead(&self) -> bool {
        self.dead.get().is_some()
    }

    fn send(&self, tag: Tag, number: u64, parts: &[&[u8]]) -> Result<(), String> {
        let written = frame::write(&mut *lock(&self.writer), tag, number, parts);
        match written {
            Ok(()) => Ok(()),
            // The request itself is too large: the process is fine.
            Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
                Err(format!("could not be sent the request: {e}"))
            }
            Err(_) => Err(self.end_within(EXIT_GRACE, "stopped reading its requests; it was stopped")),
        }
    }

    /// Calls the connector on a socket of this call's own and reads the
    /// reply on this thread.
    fn call(&self, request: &[u8], timeout: Duration) -> Result<Vec<u8>, ChildError> {
        if let Some(cause) = self.dead.get() {
            return Err(ChildError::Crashed(cause.clone()));
        }
        let mut socket = self.socket()?;
        let number = self.next.fetch_add(1, Ordering::Relaxed);
        // Known by number so host requests made during it count as its
        // lane's.
        lock(&self.waiting)
            .insert(number, Waiting { answer: None, lane: lane::current_lane(), state: state_store::current() });
        let by = crate::start_by::current().map(|by| by.to_bytes());
        let replied = match &by {
            Some(by) => socket.call(Tag::CallBy, number, &[by, request], timeout, MAX_FRAME_FROM_CONNECTOR),
            None => socket.call(Tag::Call, number, &[request], timeout, MAX_FRAME_FROM_CONNECTOR),
        };
        lock(&self.waiting).remove(&number);
        let kept = |answer| {
            lock(&self.sockets).push(socket);
            answer
        };
        match replied {
            Ok(body) => kept(outcome(&body)),
            // The process is fine: this call fails, nothing counts as a crash.
            Err(SocketError::Unsendable(e)) => {
                kept(Err(ChildError::Failed(format!("could not be sent the request: {e}"))))
            }
            Err(SocketError::Oversized(bytes)) => {
                kept(Err(ChildError::Failed(oversized(&self.name, Tag::Reply, bytes))))
            }
            Err(SocketError::TimedOut) => {
                self.kill(&format!("was killed: a call did not return within {} ms", timeout.as_millis()));
                Err(ChildError::TimedOut(timeout))
            }
            Err(SocketError::Closed) => Err(ChildError::Crashed(self.end_within(EXIT_GRACE, "was stopped"))),
            Err(SocketError::Garbled(e)) => {
                tracing::warn!(connector = %self.name, error = %e, "the connector process sent an unreadable reply");
                Err(ChildError::Crashed(
                    self.end_within(Duration::ZERO, "sent output that is not the protocol; it was stopped"),
                ))
            }
        }
    }

    /// A free call socket, or a new one passed to the host.
    fn socket(&self) -> Result<CallSocket, ChildError> {
        if let Some(socket) = lock(&self.sockets).pop() {
            return Ok(socket);
        }
        let (mine, theirs) = platform::socket_pair()
            .map_err(|e| ChildError::Failed(format!("no socket could be made for the call: {e}")))?;
        let frame = frame::encode(Tag::Socket, 0, &[]).expect("an empty frame is within the limit");
        let passed = platform::send_with_fd(&lock(&self.writer), &frame, &theirs);
        if passed.is_err() {
            return Err(ChildError::Crashed(
                self.end_within(EXIT_GRACE, "stopped reading its requests; it was stopped"),
            ));
        }
        Ok(CallSocket::new(mine))
    }

    /// A request whose reply comes on stdout (`Shutdown`).
    fn ask(&self, tag: Tag, timeout: Duration) -> Result<Vec<u8>, ChildError> {
        if let Some(cause) = self.dead.get() {
            return Err(ChildError::Crashed(cause.clone()));
        }
        let number = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::sync_channel(1);
        lock(&self.waiting)
            .insert(number, Waiting { answer: Some(tx), lane: lane::current_lane(), state: state_store::current() });
        let answer = match self.send(tag, number, &[]) {
            Err(cause) => Err(ChildError::Crashed(cause)),
            Ok(()) => match rx.recv_timeout(timeout) {
                Ok(answer) => answer,
                Err(mpsc::RecvTimeoutError::Timeout) => match rx.try_recv() {
                    // The answer came in just as the deadline passed.
                    Ok(answer) => answer,
                    Err(_) => {
                        self.kill(&format!("was killed: a call did not return within {} ms", timeout.as_millis()));
                        Err(ChildError::TimedOut(timeout))
                    }
                },
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    Err(ChildError::Crashed(self.end_within(EXIT_GRACE, "was stopped")))
                }
            },
        };
        lock(&self.waiting).remove(&number);
        answer
    }

    fn kill(&self, why: &str) {
        lock(&self.killed_for).get_or_insert_with(|| why.to_owned());
        let _ = lock(&self.child).end();
    }

    /// Makes sure the process has ended — stopping it with `why_if_alive`
    /// as the reason when it still runs after `grace` — and says how it
    /// ended. (A process whose output just ended is usually exiting: the
    /// kernel closes its files before it reports its status.)
    fn end_within(&self, grace: Duration, why_if_alive: &str) -> String {
        if let Some(cause) = self.dead.get() {
            return cause.clone();
        }
        let status = {
            let mut child = lock(&self.child);
            let deadline = Instant::now() + grace;
            while !child.has_ended() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            if !child.has_ended() {
                lock(&self.killed_for).get_or_insert_with(|| why_if_alive.to_owned());
            }
            // Ends what it left running too: a process it started that
            // kept its streams open would hide its end.
            child.end()
        };
        let cause = match (lock(&self.killed_for).clone(), status) {
            (Some(why), _) => why,
            // Its last words are read to the end first (the pipe closed
            // with the process), or the cause would miss them.
            (None, Ok(status)) => describe(status, &self.stderr.read_to_end(STDERR_GRACE)),
            (None, Err(e)) => format!("ended, and its status cannot be read: {e}"),
        };
        self.dead.get_or_init(|| cause).clone()
    }

    /// Its output ended (or became unreadable): the process is gone, or
    /// is stopped now; every waiting call fails with the cause.
    fn died(&self, ending: Ending) {
        let cause = match ending {
            Ending::Closed => self.end_within(EXIT_GRACE, "closed its output without exiting; it was stopped"),
            Ending::Garbled => self.end_within(Duration::ZERO, "sent output that is not the protocol; it was stopped"),
        };
        for (_, waiting) in lock(&self.waiting).drain() {
            if let Some(answer) = waiting.answer {
                let _ = answer.try_send(Err(ChildError::Crashed(cause.clone())));
            }
        }
    }
}

/// How a process ended, in words, with the last thing it said when that
/// explains it (a panic message, "memory allocation of … failed").
fn describe(status: std::process::ExitStatus, stderr: &VecDeque<String>) -> String {
    use std::os::unix::process::ExitStatusExt;
    let base = match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(6)) => "aborted (signal 6, SIGABRT)".to_owned(),
        (None, Some(sig)) => format!("was killed by signal {sig} ({})", signal_name(sig)),
        (None, None) => "ended".to_owned(),
    };
    // The last lines say why (a panic message, "memory allocation of …
    // failed", "has overflowed its stack"), however the runtime ended it.
    let last: Vec<String> = stderr
        .iter()
        .filter(|l| !l.trim().is_empty())
        .rev()
        .take(3)
        .map(|l| l.trim().chars().take(200).collect())
        .collect();
    if last.is_empty() {
        return base;
    }
    let words: Vec<String> = last.into_iter().rev().collect();
    format!("{base}; its last words: {}", words.join(" / "))
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        4 => "SIGILL",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        15 => "SIGTERM",
        24 => "SIGXCPU",
        25 => "SIGXFSZ",
        _ => "a signal",
    }
}

/// Reads the process's frames: replies go to their waiting calls, host
/// requests are served on threads of their own (a host request may call
/// back into the connector), the end of the stream marks the process dead.
fn spawn_reader(
    name: &str,
    process: Arc<Process>,
    stdout: std::process::ChildStdout,
    services: Arc<dyn HostServices>,
    opened: mpsc::SyncSender<Vec<u8>>,
) {
    let name = name.to_owned();
    let thread_name = format!("child-{}", name.replace('\0', "?"));
    let _ = std::thread::Builder::new().name(thread_name).spawn(move || {
        let mut input = BufReader::new(stdout);
        let ending = loop {
            let header = match frame::read_header(&mut input) {
                Ok(Some(header)) => header,
                Ok(None) => break Ending::Closed,
                // Cut short: it ended while writing.
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break Ending::Closed,
                Err(e) => {
                    tracing::warn!(connector = %name, error = %e, "the connector process sent an unreadable frame");
                    break Ending::Garbled;
                }
            };
            let frame = match admit(&name, &process, &header) {
                Admit::Read => match frame::read_body(&mut input, &header) {
                    Ok(body) => Frame { tag: header.tag, number: header.number, body },
                    Err(_) => break Ending::Closed,
                },
                Admit::PassOver => match frame::skip_body(&mut input, &header) {
                    Ok(()) => continue,
                    Err(_) => break Ending::Closed,
                },
            };
            match frame.tag {
                Tag::Opened => {
                    let _ = opened.try_send(frame.body);
                }
                Tag::Reply => reply(&process, frame),
                Tag::HostCall => serve_host_call(&name, &process, &services, frame),
                other => {
                    tracing::warn!(connector = %name, tag = ?other, "the connector process sent an unexpected frame");
                    break Ending::Garbled;
                }
            }
        };
        drop(opened);
        process.died(ending);
    });
}

/// What the reader does with a frame whose header it read.
enum Admit {
    Read,
    PassOver,
}

/// Decides before a byte of the body is held: a reply nobody waits for is
/// passed over; a frame over [`MAX_FRAME_FROM_CONNECTOR`] is passed over
/// and what waits for it is told why.
fn admit(name: &str, process: &Process, header: &Header) -> Admit {
    if header.tag == Tag::Reply && !lock(&process.waiting).contains_key(&header.number) {
        return Admit::PassOver;
    }
    if header.body_len <= MAX_FRAME_FROM_CONNECTOR {
        return Admit::Read;
    }
    let why = oversized(name, header.tag, header.body_len);
    match header.tag {
        Tag::Reply => {
            if let Some(answer) = lock(&process.waiting).remove(&header.number).and_then(|w| w.answer) {
                let _ = answer.try_send(Err(ChildError::Failed(why)));
            }
        }
        Tag::HostCall => {
            let _ = process.send(Tag::HostReply, header.number, &[&connector_abi::protocol::encode_error(&why)]);
        }
        _ => {}
    }
    Admit::PassOver
}

/// Says (and logs) that a frame of `bytes` was over the limit and passed over.
fn oversized(name: &str, tag: Tag, bytes: usize) -> String {
    let why = format!(
        "the connector process sent {bytes} bytes in one frame, over the limit of {} MiB; it was not read",
        MAX_FRAME_FROM_CONNECTOR >> 20
    );
    tracing::warn!(connector = %name, tag = ?tag, bytes, "{why}");
    why
}

fn reply(process: &Process, frame: Frame) {
    let Some(answer) = lock(&process.waiting).remove(&frame.number).and_then(|w| w.answer) else { return };
    let _ = answer.try_send(outcome(&frame.body));
}

/// What a reply's body says: the response document, or why there is none.
fn outcome(body: &[u8]) -> Result<Vec<u8>, ChildError> {
    match body.split_first() {
        Some((&b, rest)) if b == Outcome::Answered as u8 => Ok(rest.to_vec()),
        Some((&b, rest)) if b == Outcome::NotStarted as u8 => {
            let nanos = rest.get(..8).map_or(0, |n| u64::from_le_bytes(n.try_into().expect("eight bytes")));
            Err(ChildError::NotStarted { late: Duration::from_nanos(nanos) })
        }
        Some((_, rest)) => Err(ChildError::Failed(String::from_utf8_lossy(rest).into_owned())),
        None => Err(ChildError::Failed("the connector process sent an empty reply".into())),
    }
}

fn serve_host_call(name: &str, process: &Arc<Process>, services: &Arc<dyn HostServices>, frame: Frame) {
    if frame.body.len() < 8 {
        return;
    }
    let during = u64::from_le_bytes(frame.body[..8].try_into().expect("eight bytes"));
    let (lane, state) = match lock(&process.waiting).get(&during) {
        Some(w) => (w.lane, w.state.clone()),
        // Not during a call, as a connector's own thread asks.
        None if during == 0 => (0, None),
        // During a call already given up (a timeout, a crash): its state
        // writes go nowhere, as the call's own would.
        None => (0, Some(state_store::Pending::new())),
    };
    let (name, served, services) = (name.to_owned(), process.clone(), services.clone());
    process.host_calls.run(Box::new(move || {
        let request = &frame.body[8..];
        let response = catch_unwind(AssertUnwindSafe(|| {
            state_store::within(state, || lane::as_lane(lane, || host::dispatch(&name, &services, request)))
        }))
        .unwrap_or_else(|panic| {
            let message = connector_abi::panic_message(&*panic);
            tracing::error!(connector = %name, error = %message, "the host panicked while serving a connector request");
            connector_abi::protocol::encode_error(&format!("the host failed to serve the request: {message}"))
        });
        let _ = served.send(Tag::HostReply, frame.number, &[&response]);
    }));
}
