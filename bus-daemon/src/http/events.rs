//! `GET /api/events`: Server-Sent Events that tell the UI what changed —
//! `queues`, `connectors`, `eventlog`, `settings`, `history` — so it refreshes what it
//! shows instead of polling. One watcher per daemon compares a stamp of
//! each once a second, and only while a stream is open (its first look
//! after an idle spell names everything, as nothing is known to be fresh). A stream never
//! holds the server: it lasts at most [`LIFETIME`] (the browser connects
//! again by itself, told to wait [`RETRY`]), ends when the server stops,
//! and at most a quarter of the connection table streams at once (beyond
//! that: 503 with `Retry-After`), so requests always find room.

use super::error::{blocking, ApiError};
use super::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use bus_core::db::Database;
use bus_core::eventlog::{EventLog, EventQuery};
use bus_core::manager::ConnectorManager;
use std::collections::hash_map::DefaultHasher;
use std::convert::Infallible;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, watch, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// How long one stream lasts.
const LIFETIME: Duration = Duration::from_secs(25);
/// How long the browser waits before it connects again.
const RETRY: Duration = Duration::from_secs(1);
/// How often the watcher looks.
const TICK: Duration = Duration::from_secs(1);
/// The parts a change can name.
const EVERYTHING: [&str; 5] = ["queues", "connectors", "eventlog", "settings", "history"];
/// A comment line this often keeps proxies from closing a quiet stream.
const KEEP_ALIVE: Duration = Duration::from_secs(10);

/// What the streams share.
pub struct Changes {
    tx: broadcast::Sender<Arc<str>>,
    streams: Arc<Semaphore>,
    stopping: watch::Receiver<bool>,
}

impl Changes {
    /// At most `max_streams` streams at once; streams end once `stopping`
    /// turns true.
    pub fn new(max_streams: usize, stopping: watch::Receiver<bool>) -> Arc<Changes> {
        let (tx, _) = broadcast::channel(16);
        Arc::new(Changes { tx, streams: Arc::new(Semaphore::new(max_streams.max(1))), stopping })
    }

    /// Compares the stamps once a [`TICK`] while anyone listens, and tells
    /// the streams which parts changed. Runs until the server stops.
    pub async fn watch(self: Arc<Self>, sources: Sources) {
        let sources = Arc::new(sources);
        let mut last: Option<Stamp> = None;
        let mut unheard_since: Option<Instant> = None;
        let mut stopping = self.stopping.clone();
        loop {
            tokio::select! {
                () = tokio::time::sleep(TICK) => {}
                _ = stopping.wait_for(|s| *s) => return,
            }
            if self.tx.receiver_count() == 0 {
                // The gap of a reconnect (a stream ends every LIFETIME)
                // keeps the last stamp; a longer silence forgets it.
                let since = *unheard_since.get_or_insert_with(Instant::now);
                if since.elapsed() > RETRY + TICK * 3 {
                    last = None;
                }
                continue;
            }
            unheard_since = None;
            let read = sources.clone();
            let Ok(Ok(now)) = tokio::task::spawn_blocking(move || read.stamp()).await else { continue };
            // The first look after nobody listened has nothing to compare
            // with: what a page showed before its stream was watched may be
            // stale, so everything counts as changed.
            let what = match &last {
                Some(before) => before.changed(&now),
                None => EVERYTHING.to_vec(),
            };
            if !what.is_empty() {
                let _ = self.tx.send(Arc::from(serde_json::json!(what).to_string()));
            }
            last = Some(now);
        }
    }
}

/// Where the watcher reads what it compares.
pub struct Sources {
    pub db: Database,
    pub manager: Arc<ConnectorManager>,
    pub events: Arc<EventLog>,
}

/// A digest of each part the UI shows.
#[derive(PartialEq, Eq)]
struct Stamp {
    queues: u64,
    connectors: u64,
    eventlog: Option<i64>,
    settings: u64,
    /// The connectors' history of the last quarter hour (the Overview's
    /// sparklines).
    history: [i64; 4],
}

impl Stamp {
    fn changed(&self, now: &Stamp) -> Vec<&'static str> {
        [
            ("queues", self.queues != now.queues),
            ("connectors", self.connectors != now.connectors),
            ("eventlog", self.eventlog != now.eventlog),
            ("settings", self.settings != now.settings),
            ("history", self.history != now.history),
        ]
        .into_iter()
        .filter_map(|(what, changed)| changed.then_some(what))
        .collect()
    }
}

fn digest(value: impl Hash) -> u64 {
    let mut h = DefaultHasher::new();
    value.hash(&mut h);
    h.finish()
}

impl Sources {
    fn stamp(&self) -> Result<Stamp, String> {
        let conn = self.db.connect().map_err(|e| e.to_string())?;
        let queues = bus_core::queue_admin::stats(&conn).map_err(|e| e.to_string())?;
        let settings = bus_core::settings::read(&conn).map_err(|e| e.to_string())?;
        let newest = self
            .events
            .list(&EventQuery { source: None, event_type: None, code: None, before_id: None, limit: 1 })
            .map_err(|e| e.to_string())?;
        let since = bus_core::history::minute_of(std::time::SystemTime::now()) - 15;
        let history = bus_core::history::stamp(&conn, since).map_err(|e| e.to_string())?;
        let set = self.manager.current();
        let states: Vec<_> =
            set.status.iter().map(|(name, s)| (name, s.loaded, s.error.as_deref(), s.starting)).collect();
        Ok(Stamp {
            queues: digest(queues.iter().map(|q| (&q.connector, q.inbound, q.depth, q.failed)).collect::<Vec<_>>()),
            connectors: digest((set.generation, states)),
            eventlog: newest.first().map(|e| e.id),
            settings: digest(format!("{settings:?}")),
            history,
        })
    }
}

/// The stream. Asked without `Accept: text/event-stream` (what `EventSource`
/// sends) it answers 406, so a plain client is not left waiting on it.
pub async fn stream(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let wants_stream =
        headers.get_all(header::ACCEPT).iter().filter_map(|v| v.to_str().ok()).any(|v| v.contains("text/event-stream"));
    if !wants_stream {
        return Err(ApiError::new(
            StatusCode::NOT_ACCEPTABLE,
            "this route is a stream of Server-Sent Events: ask for it with `Accept: text/event-stream` (as EventSource does)",
        ));
    }
    let changes = s.changes.clone();
    let Ok(permit) = changes.streams.clone().try_acquire_owned() else {
        return Err(ApiError::unavailable("too many event streams are open at once; try again shortly"));
    };
    // Reachable before the first event: a stream that cannot read the
    // database says so at once instead of staying silent.
    let db = s.db.clone();
    blocking(move || {
        db.connect()?;
        Ok(())
    })
    .await?;
    let open = Open {
        rx: changes.tx.subscribe(),
        stopping: changes.stopping.clone(),
        until: Instant::now() + LIFETIME,
        hello: true,
        _permit: permit,
    };
    let events = futures_util::stream::unfold(open, |mut open| async move {
        if std::mem::take(&mut open.hello) {
            return Some((Ok::<_, Infallible>(Event::default().retry(RETRY).event("hello").data("{}")), open));
        }
        let what = tokio::select! {
            got = open.rx.recv() => match got {
                Ok(what) => what,
                // Missed some: everything may have changed.
                Err(broadcast::error::RecvError::Lagged(_)) => Arc::from(serde_json::json!(EVERYTHING).to_string()),
                Err(broadcast::error::RecvError::Closed) => return None,
            },
            () = tokio::time::sleep_until(open.until) => return None,
            _ = open.stopping.wait_for(|s| *s) => return None,
        };
        Some((Ok(Event::default().event("change").data(what.as_ref())), open))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)).into_response())
}

/// One open stream.
struct Open {
    rx: broadcast::Receiver<Arc<str>>,
    stopping: watch::Receiver<bool>,
    until: Instant,
    hello: bool,
    _permit: OwnedSemaphorePermit,
}
