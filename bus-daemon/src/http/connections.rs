//! The table of open HTTP connections and what each is doing — in a
//! request, or waiting for one since when — so that a full table makes room
//! by closing the connection that has waited longest (a slow or half-sent
//! client, an idle keep-alive one), never one in a request, and so that
//! under pressure connections that send nothing are closed early.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// The open connections, at most `max`.
pub(super) struct Connections {
    max: usize,
    table: Mutex<HashMap<u64, Arc<Entry>>>,
    /// Until when the table counts as under pressure: a while after the
    /// last moment it was more than half full, so the rest of a flood goes
    /// too, not only its excess.
    pressure_until: Mutex<Option<Instant>>,
    next: AtomicUsize,
    /// Woken when room may have been made (a connection closed or finished
    /// a request).
    pub room: Arc<Notify>,
}

/// One open connection.
pub(super) struct Entry {
    id: u64,
    /// Requests in progress (one at a time on HTTP/1.1).
    requests: AtomicUsize,
    /// Since when it has waited for a request head (opened, or answered).
    idle_since: Mutex<Instant>,
    room: Arc<Notify>,
    /// Notified when the connection is to be closed to make room.
    pub shed: Notify,
}

/// A request in progress on a connection; the connection waits again from
/// when it is dropped.
pub(super) struct Busy(Arc<Entry>);

impl Drop for Busy {
    fn drop(&mut self) {
        *lock(&self.0.idle_since) = Instant::now();
        self.0.requests.fetch_sub(1, Ordering::SeqCst);
        self.0.room.notify_one();
    }
}

impl Entry {
    /// Marks a request in progress until the guard is dropped.
    pub fn busy(self: &Arc<Self>) -> Busy {
        self.requests.fetch_add(1, Ordering::SeqCst);
        Busy(self.clone())
    }

    /// True while a request is in progress (until its answer is written).
    pub fn in_request(&self) -> bool {
        self.requests.load(Ordering::SeqCst) > 0
    }

    fn idle_for(&self, now: Instant) -> Option<Duration> {
        (self.requests.load(Ordering::SeqCst) == 0).then(|| now.saturating_duration_since(*lock(&self.idle_since)))
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Connections {
    pub fn new(max: usize) -> Connections {
        Connections {
            max,
            table: Mutex::default(),
            pressure_until: Mutex::default(),
            next: AtomicUsize::new(0),
            room: Arc::default(),
        }
    }

    /// True when one more connection fits, after closing the one that has
    /// waited longest for a request if the table is full; false when every
    /// open connection is in a request.
    pub fn make_room(&self) -> bool {
        let mut table = lock(&self.table);
        if table.len() < self.max {
            return true;
        }
        let now = Instant::now();
        let longest = table.values().filter_map(|e| Some((e.idle_for(now)?, e.id))).max().map(|(_, id)| id);
        match longest.and_then(|id| table.remove(&id)) {
            Some(entry) => {
                entry.shed.notify_one();
                true
            }
            None => false,
        }
    }

    /// Enters a new connection, waiting for its first request from now.
    pub fn open(&self) -> Arc<Entry> {
        let entry = Arc::new(Entry {
            id: self.next.fetch_add(1, Ordering::Relaxed) as u64,
            requests: AtomicUsize::new(0),
            idle_since: Mutex::new(Instant::now()),
            room: self.room.clone(),
            shed: Notify::new(),
        });
        lock(&self.table).insert(entry.id, entry.clone());
        entry
    }

    /// Removes a connection that ended.
    pub fn close(&self, entry: &Entry) {
        lock(&self.table).remove(&entry.id);
        self.room.notify_one();
    }

    /// While more than half the table is taken, and for `linger` after,
    /// closes every connection that has waited longer than `timeout` for a
    /// request; returns how many.
    pub fn shed_idle_under_pressure(&self, timeout: Duration, linger: Duration) -> usize {
        let mut table = lock(&self.table);
        let now = Instant::now();
        let mut until = lock(&self.pressure_until);
        if table.len() * 2 > self.max {
            *until = Some(now + linger);
        }
        if until.is_none_or(|u| now > u) {
            return 0;
        }
        let stale: Vec<u64> =
            table.values().filter(|e| e.idle_for(now).is_some_and(|idle| idle > timeout)).map(|e| e.id).collect();
        for id in &stale {
            if let Some(entry) = table.remove(id) {
                entry.shed.notify_one();
            }
        }
        if !stale.is_empty() {
            self.room.notify_one();
        }
        stale.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_table_closes_the_longest_waiting_connection_and_never_a_busy_one() {
        let c = Connections::new(2);
        let first = c.open();
        let second = c.open();
        let _request = first.busy();
        assert!(c.make_room(), "the idle one makes room");
        assert_eq!(lock(&c.table).len(), 1);
        assert!(!lock(&c.table).contains_key(&second.id), "the idle one went");
        let third = c.open();
        let _also = third.busy();
        assert!(!c.make_room(), "both are in a request: wait");
        drop(_also);
        assert!(c.make_room(), "finished a request: it waits again, and can go");
    }

    #[test]
    fn under_pressure_connections_that_send_nothing_are_closed_early() {
        let (timeout, linger) = (Duration::from_millis(20), Duration::from_millis(200));
        let c = Connections::new(4);
        let flood: Vec<_> = (0..3).map(|_| c.open()).collect();
        let _busy = flood[0].busy();
        std::thread::sleep(timeout * 2);
        let last = c.open();
        assert_eq!(c.shed_idle_under_pressure(timeout, linger), 2, "the two that waited, not the busy one");
        // Two of four taken: no pressure now, but the flood's last one goes
        // once it has waited too, within the linger.
        assert_eq!(c.shed_idle_under_pressure(timeout, linger), 0, "the last one has not waited yet");
        std::thread::sleep(timeout * 2);
        assert_eq!(c.shed_idle_under_pressure(timeout, linger), 1);
        drop(last);
        let after = c.open();
        std::thread::sleep(linger + timeout);
        assert_eq!(c.shed_idle_under_pressure(timeout, linger), 0, "the pressure is over");
        drop(after);
    }
}
