//! A blocking PostgreSQL client whose every call has a deadline. It is
//! tokio-postgres driven by a single-threaded runtime of its own (as the
//! `postgres` crate does), with each call wrapped in a timeout: a server
//! that stopped answering — frozen, cut off behind a silent network —
//! fails the call after the deadline instead of holding the caller for as
//! long as it takes. A call that timed out leaves its connection unusable
//! (a reply may still be on its way), so [`Client::is_closed`] says so and
//! the owner connects again; dropping the client closes the socket, and the
//! server rolls back whatever transaction it had open.
//!
//! The engine stays synchronous: the async runtime is private to this crate
//! (one per connection, running only while a call waits).

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::time::Duration;
use tokio::runtime::Runtime;
use tokio::sync::mpsc;
use tokio_postgres::AsyncMessage;

pub use tokio_postgres::error::SqlState;
pub use tokio_postgres::{types, Notification, Row, Statement};

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Postgres(#[from] tokio_postgres::Error),
    /// No answer within the deadline; the connection is given up.
    #[error("the database server did not answer within {} ms", .0.as_millis())]
    TimedOut(Duration),
    /// The connection ended (the server closed it).
    #[error("the connection to the database server ended")]
    Closed,
    #[error("cannot start the database client's runtime: {0}")]
    Runtime(std::io::Error),
}

/// How long calls may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    /// Opening a connection (TCP and the server's start-up), unless the
    /// URL sets `connect_timeout`.
    pub connect: Duration,
    /// Any one call on an open connection, unless the URL gives the server
    /// a `statement_timeout` (`options=-c statement_timeout=…`): then that
    /// and a second more, so the server's own limit speaks first.
    pub call: Duration,
}

/// A `statement_timeout` in libpq `options` (`-c statement_timeout=2000`,
/// `…=2s`, `…=500ms`), as a duration.
fn statement_timeout(options: &str) -> Option<Duration> {
    let value = options.split("statement_timeout=").nth(1)?.split_whitespace().next()?;
    let (digits, unit) = value.split_at(value.find(|c: char| !c.is_ascii_digit()).unwrap_or(value.len()));
    let n: u64 = digits.parse().ok()?;
    match unit {
        "" | "ms" => Some(Duration::from_millis(n)),
        "s" => Some(Duration::from_secs(n)),
        "min" => Some(Duration::from_secs(n * 60)),
        _ => None,
    }
    .filter(|d| !d.is_zero())
}

/// One connection.
pub struct Client {
    runtime: Runtime,
    client: tokio_postgres::Client,
    notifications: RefCell<mpsc::UnboundedReceiver<Notification>>,
    deadline: Duration,
    /// A call timed out: the connection is not used again.
    given_up: Cell<bool>,
}

impl Client {
    /// Connects to `url` (libpq's URL or key-value form).
    pub fn connect(url: &str, deadlines: Deadlines) -> Result<Client, Error> {
        let mut config: tokio_postgres::Config = url.parse()?;
        let connect = config.get_connect_timeout().copied().unwrap_or(deadlines.connect);
        config.connect_timeout(connect);
        let call = config
            .get_options()
            .and_then(statement_timeout)
            .map_or(deadlines.call, |server| server + Duration::from_secs(1));
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(Error::Runtime)?;
        // The start-up exchange after the TCP connect has no timeout of its
        // own in tokio-postgres: the whole connect gets one.
        // (A timer is made inside the runtime it belongs to.)
        let connecting = async { tokio::time::timeout(connect, config.connect(tokio_postgres::NoTls)).await };
        let (client, mut connection) = runtime.block_on(connecting).map_err(|_| Error::TimedOut(connect))??;
        let (sender, receiver) = mpsc::unbounded_channel();
        // Drives the connection (while a call waits) and keeps what the
        // server sends unasked: notifications.
        runtime.spawn(async move {
            loop {
                match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                    Some(Ok(AsyncMessage::Notification(n))) => {
                        let _ = sender.send(n);
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => return,
                }
            }
        });
        Ok(Client {
            runtime,
            client,
            notifications: RefCell::new(receiver),
            deadline: call,
            given_up: Cell::new(false),
        })
    }

    fn call<T>(&self, work: impl Future<Output = Result<T, tokio_postgres::Error>>) -> Result<T, Error> {
        match self.runtime.block_on(async { tokio::time::timeout(self.deadline, work).await }) {
            Ok(result) => Ok(result?),
            Err(_) => {
                self.given_up.set(true);
                Err(Error::TimedOut(self.deadline))
            }
        }
    }

    pub fn prepare(&self, sql: &str) -> Result<Statement, Error> {
        self.call(self.client.prepare(sql))
    }

    pub fn execute(&self, statement: &Statement, params: &[&(dyn types::ToSql + Sync)]) -> Result<u64, Error> {
        self.call(self.client.execute(statement, params))
    }

    pub fn query(&self, statement: &Statement, params: &[&(dyn types::ToSql + Sync)]) -> Result<Vec<Row>, Error> {
        self.call(self.client.query(statement, params))
    }

    pub fn batch_execute(&self, sql: &str) -> Result<(), Error> {
        self.call(self.client.batch_execute(sql))
    }

    /// Whether the connection can no longer be used: the server closed it,
    /// or a call on it timed out.
    pub fn is_closed(&self) -> bool {
        self.given_up.get() || self.client.is_closed()
    }

    /// The next notification (after `LISTEN`), waiting at most `wait`;
    /// `Ok(None)` when none came. An error: the connection ended.
    pub fn next_notification(&self, wait: Duration) -> Result<Option<Notification>, Error> {
        let mut notifications = self.notifications.borrow_mut();
        match self.runtime.block_on(async { tokio::time::timeout(wait, notifications.recv()).await }) {
            Ok(Some(n)) => Ok(Some(n)),
            Ok(None) => Err(Error::Closed),
            Err(_) => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::statement_timeout;
    use std::time::Duration;

    #[test]
    fn the_servers_statement_timeout_is_read_from_the_options() {
        assert_eq!(statement_timeout("-c statement_timeout=2000"), Some(Duration::from_millis(2000)));
        assert_eq!(statement_timeout("-c search_path=x -c statement_timeout=3s"), Some(Duration::from_secs(3)));
        assert_eq!(statement_timeout("-c statement_timeout=250ms -c x=y"), Some(Duration::from_millis(250)));
        assert_eq!(statement_timeout("-c statement_timeout=0"), None, "0: no limit");
        assert_eq!(statement_timeout("-c lock_timeout=1000"), None);
    }
}
