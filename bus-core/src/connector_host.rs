//! The connector host: the child process a connector runs in under
//! `process` isolation (`bus-daemon connector-host`, or any embedder that
//! calls [`run_host`]). It opens the private library copy the daemon
//! prepared, creates the class, and answers calls on the sockets the daemon
//! passes it on stdin (a thread per socket, each answering on its own
//! socket); host requests the connector makes (from any of its threads)
//! go to the daemon as frames on stdout and wait for the answer, which one
//! reader thread routes from stdin.
//!
//! The protocol runs on private duplicates of stdin and stdout
//! (`platform.rs`): a connector's `println!` ends up in the daemon's log
//! instead of corrupting frames, and a program the connector starts
//! inherits neither stream. The child dies with the daemon: the protocol
//! input at EOF ends it, and the kernel sends it SIGKILL when its parent
//! dies.

use crate::isolation::frame::{self, Frame, Outcome, Tag};
use crate::isolation::platform::{self, FdInput};
use crate::isolation::{OpenAnswer, OpenRequest};
use crate::loader::open_library_copy;
use crate::start_by::StartBy;
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RResult, RSlice, RStr, RString, RVec};
use connector_abi::abi::{ConnectorBox, HostObject, HostObject_TO};
use std::cell::Cell;
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};

/// Why the host stopped with an error (it is printed on stderr, which the
/// daemon logs).
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("cannot set up the protocol streams: {0}")]
    Streams(std::io::Error),
    #[error("the daemon sent {0}")]
    Protocol(String),
    #[error("reading from the daemon failed: {0}")]
    Read(std::io::Error),
}

type Writer = Arc<Mutex<BufWriter<File>>>;

fn send(out: &Writer, tag: Tag, number: u64, parts: &[&[u8]]) {
    let mut out = out.lock().unwrap_or_else(|p| p.into_inner());
    if frame::write(&mut *out, tag, number, parts).is_err() {
        // The daemon is gone: nothing is left to answer to.
        std::process::exit(0);
    }
}

thread_local! {
    /// The call this thread is answering (0: none), sent with host
    /// requests so the daemon knows which call they belong to.
    static CURRENT_CALL: Cell<u64> = const { Cell::new(0) };
}

/// Runs the connector host on this process's stdin and stdout; returns when
/// the daemon asks it to shut down or goes away.
pub fn run_host() -> Result<(), HostError> {
    let streams = platform::private_protocol_streams().map_err(HostError::Streams)?;
    if !platform::die_with_parent() {
        return Ok(()); // the daemon died before the signal was armed
    }
    let out: Writer = Arc::new(Mutex::new(BufWriter::new(streams.output)));
    let mut input = BufReader::new(streams.input);

    let open = match frame::read(&mut input).map_err(HostError::Read)? {
        Some(Frame { tag: Tag::Open, body, .. }) => serde_json::from_slice::<OpenRequest>(&body)
            .map_err(|e| HostError::Protocol(format!("an unreadable open request: {e}")))?,
        Some(other) => return Err(HostError::Protocol(format!("{:?} before Open", other.tag))),
        None => return Ok(()),
    };
    open.limits.apply();
    let waiting: Arc<Mutex<HashMap<u64, mpsc::SyncSender<Vec<u8>>>>> = Arc::default();
    // One thread reads stdin from here on: host replies are routed at
    // once, so a connector may use its host anywhere — also while it is
    // being created or shut down on this thread —, and each call socket
    // passed gets a thread that answers its calls.
    let (frames, incoming) = mpsc::channel::<Result<Frame, std::io::Error>>();
    let reader = Arc::new(Reader { routing: waiting.clone(), calls: OnceLock::new(), to_main: frames });
    {
        let reader = reader.clone();
        std::thread::Builder::new()
            .name("connector-frames".into())
            .spawn(move || reader.read(input))
            .map_err(HostError::Streams)?;
    }
    let host = ProxyHost { out: out.clone(), waiting, next: AtomicU64::new(1) };
    let object = match create(&open, host) {
        Ok(object) => Arc::new(object),
        Err(e) => {
            answer_open(&out, Some(e));
            return Ok(());
        }
    };
    // Set before the daemon hears the connector is open: no call comes
    // earlier.
    let _ = reader.calls.set(Calls { object: object.clone() });
    answer_open(&out, None);
    // The readers answer the calls; this thread waits for the shutdown.
    let Ok(f) = incoming.recv() else { return Ok(()) };
    let f = f.map_err(HostError::Read)?;
    match f.tag {
        Tag::Shutdown => {
            object.shutdown();
            send(&out, Tag::Reply, f.number, &[&[Outcome::Answered as u8]]);
            Ok(())
        }
        other => Err(HostError::Protocol(format!("an unexpected {other:?} frame"))),
    }
}

/// The thread that reads the daemon's frames on stdin.
struct Reader {
    /// Host requests waiting for their reply, by number.
    routing: Arc<Mutex<HashMap<u64, mpsc::SyncSender<Vec<u8>>>>>,
    /// Set once the connector is created.
    calls: OnceLock<Calls>,
    /// Frames for the main thread (shutdown), and a read that failed.
    to_main: mpsc::Sender<Result<Frame, std::io::Error>>,
}

impl Reader {
    fn read(self: Arc<Self>, input: BufReader<FdInput>) {
        let mut input = input;
        loop {
            match frame::read(&mut input) {
                Ok(Some(f)) if f.tag == Tag::HostReply => {
                    if let Some(waiter) = self.routing.lock().unwrap_or_else(|p| p.into_inner()).remove(&f.number) {
                        let _ = waiter.send(f.body);
                    }
                }
                Ok(Some(f)) if f.tag == Tag::Socket => {
                    let Some(fd) = input.get_mut().take_fd() else {
                        eprintln!("the daemon sent a call socket frame without a socket");
                        std::process::exit(1);
                    };
                    let me = self.clone();
                    let socket = UnixStream::from(fd);
                    let started =
                        std::thread::Builder::new().name("connector-call".into()).spawn(move || me.answer_on(socket));
                    if let Err(e) = started {
                        eprintln!("cannot start a thread to answer calls: {e}");
                        std::process::exit(1);
                    }
                }
                Ok(Some(f)) => {
                    if self.to_main.send(Ok(f)).is_err() {
                        return;
                    }
                }
                // The daemon is gone (or sent nonsense): the host ends.
                Ok(None) => std::process::exit(0),
                Err(e) => {
                    let _ = self.to_main.send(Err(e));
                    return;
                }
            }
        }
    }

    /// Answers the calls that come on one call socket, one at a time,
    /// until the daemon closes it.
    fn answer_on(&self, socket: UnixStream) {
        let mut input = BufReader::new(&socket);
        loop {
            let f = match frame::read(&mut input) {
                Ok(Some(f)) if matches!(f.tag, Tag::Call | Tag::CallBy) => f,
                Ok(None) => return,
                Ok(Some(f)) => {
                    eprintln!("the daemon sent a {:?} frame on a call socket", f.tag);
                    std::process::exit(1);
                }
                Err(e) => {
                    eprintln!("reading a call socket failed: {e}");
                    std::process::exit(1);
                }
            };
            let number = f.number;
            let reply = |parts: &[&[u8]]| frame::write(&mut &socket, Tag::Reply, number, parts);
            let sent = match self.calls.get() {
                Some(calls) => calls.answer(f, reply),
                None => reply(&[&[Outcome::Failed as u8], b"the connector is not created yet"]),
            };
            if sent.is_err() {
                // The daemon let go of the call (it is ending this process).
                return;
            }
        }
    }
}

/// How calls are answered once the connector is created.
struct Calls {
    object: Arc<ConnectorBox>,
}

impl Calls {
    /// Answers a call frame on this thread, handing `reply` the parts of
    /// the reply's body.
    fn answer<R>(&self, f: Frame, reply: impl FnOnce(&[&[u8]]) -> R) -> R {
        let request = match f.tag {
            Tag::CallBy if f.body.len() >= 8 => {
                let by = StartBy::from_bytes(f.body[..8].try_into().expect("eight bytes"));
                if let Some(late) = by.passed_by() {
                    let late = u64::try_from(late.as_nanos()).unwrap_or(u64::MAX).to_le_bytes();
                    return reply(&[&[Outcome::NotStarted as u8], &late]);
                }
                &f.body[8..]
            }
            _ => &f.body[..],
        };
        CURRENT_CALL.with(|c| c.set(f.number));
        let result = self.object.call(RSlice::from_slice(request));
        CURRENT_CALL.with(|c| c.set(0));
        match result {
            RResult::ROk(bytes) => reply(&[&[Outcome::Answered as u8], &bytes]),
            RResult::RErr(e) => reply(&[&[Outcome::Failed as u8], e.as_str().as_bytes()]),
        }
    }
}

fn answer_open(out: &Writer, error: Option<String>) {
    let body = serde_json::to_vec(&OpenAnswer { error }).expect("an answer serializes");
    send(out, Tag::Opened, 0, &[&body]);
}

/// Opens the library copy and creates the class, as the in-process loader
/// does.
fn create(open: &OpenRequest, host: ProxyHost) -> Result<ConnectorBox, String> {
    let root = open_library_copy(&open.source, &open.copy).map_err(|e| e.to_string())?;
    let classes: Vec<String> = (root.classes())().into_iter().map(|s| s.into_string()).collect();
    if !classes.iter().any(|c| c == &open.class) {
        let available = if classes.is_empty() { "nothing".into() } else { classes.join(", ") };
        return Err(crate::loader::LoadError::ClassNotExported {
            class: open.class.clone(),
            path: open.source.clone(),
            available,
        }
        .to_string());
    }
    let host = HostObject_TO::from_value(host, TD_Opaque);
    match (root.new_connector())(RStr::from_str(&open.class), RStr::from_str(&open.config), host) {
        RResult::ROk(object) => Ok(object),
        RResult::RErr(cause) => {
            Err(crate::loader::LoadError::CreateFailed { class: open.class.clone(), cause: cause.into_string() }
                .to_string())
        }
    }
}

/// The host object a connector in this process gets: each request becomes
/// a `HostCall` frame, answered by the daemon.
struct ProxyHost {
    out: Writer,
    waiting: Arc<Mutex<HashMap<u64, mpsc::SyncSender<Vec<u8>>>>>,
    next: AtomicU64,
}

impl HostObject for ProxyHost {
    fn call(&self, request: RSlice<'_, u8>) -> RResult<RVec<u8>, RString> {
        let number = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::sync_channel(1);
        self.waiting.lock().unwrap_or_else(|p| p.into_inner()).insert(number, tx);
        let during = CURRENT_CALL.with(Cell::get);
        send(&self.out, Tag::HostCall, number, &[&during.to_le_bytes(), request.as_slice()]);
        match rx.recv() {
            Ok(bytes) => RResult::ROk(RVec::from(bytes)),
            Err(_) => RResult::RErr(RString::from("the daemon did not answer the host request")),
        }
    }
}
