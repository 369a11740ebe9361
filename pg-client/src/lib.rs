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
//!
//! TLS follows libpq's `sslmode` and `sslrootcert` (see `tls.rs`), on
//! rustls. A statement may be deferred ([`Client::defer_batch`]: the
//! `BEGIN` of a transaction) and is then sent in the same write as the next
//! call, saving a round trip to the server. A statement may also be sent
//! ahead ([`Client::send`]): out now, its answer read with the next call's,
//! so the server works on it while the caller prepares what follows.

mod tls;

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::runtime::Runtime;
use tokio::sync::mpsc;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::AsyncMessage;
use tokio_postgres_rustls::MakeRustlsConnect;

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
    /// The URL's TLS settings cannot be used (an unknown `sslmode`, a CA
    /// file that cannot be read or holds no certificate).
    #[error("TLS to the database server: {0}")]
    Tls(String),
    /// A statement sent ahead ([`Client::send`]) failed; `label` is what
    /// its sender named it by.
    #[error("{source}")]
    Sent { label: Option<i64>, source: tokio_postgres::Error },
}

/// The answer to a statement sent ahead, still to be read.
type Answer = Pin<Box<dyn Future<Output = Result<(), Error>> + Send>>;

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
    client: Arc<tokio_postgres::Client>,
    notifications: RefCell<mpsc::UnboundedReceiver<Notification>>,
    deadline: Duration,
    /// A call timed out: the connection is not used again.
    given_up: Cell<bool>,
    /// A statement sent with the next call (see [`Client::defer_batch`]).
    deferred: RefCell<Option<String>>,
    /// Statements sent ahead, in order, whose answers the next call reads
    /// ([`Client::send`]).
    sent: RefCell<Vec<Answer>>,
}

impl Client {
    /// Connects to `url` (libpq's URL or key-value form; in the URL form
    /// also `sslmode=verify-ca|verify-full` and `sslrootcert=<path>`).
    pub fn connect(url: &str, deadlines: Deadlines) -> Result<Client, Error> {
        let (url, tls) = tls::split(url).map_err(Error::Tls)?;
        let mut config: tokio_postgres::Config = url.parse()?;
        if url.starts_with("postgres") {
            config.ssl_mode(tls.mode.ssl_mode());
        }
        let rustls_config = tls::client_config(&tls).map_err(Error::Tls)?;
        let connect = config.get_connect_timeout().copied().unwrap_or(deadlines.connect);
        config.connect_timeout(connect);
        let call = config
            .get_options()
            .and_then(statement_timeout)
            .map_or(deadlines.call, |server| server + Duration::from_secs(1));
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(Error::Runtime)?;
        let (sender, receiver) = mpsc::unbounded_channel();
        // The start-up exchange after the TCP connect has no timeout of its
        // own in tokio-postgres: the whole connect gets one.
        // (A timer is made inside the runtime it belongs to.)
        let client = match rustls_config {
            None => runtime.block_on(start(&runtime, &config, tokio_postgres::NoTls, connect, sender))?,
            Some(c) => runtime.block_on(start(&runtime, &config, MakeRustlsConnect::new(c), connect, sender))?,
        };
        Ok(Client {
            runtime,
            client: Arc::new(client),
            notifications: RefCell::new(receiver),
            deadline: call,
            given_up: Cell::new(false),
            deferred: RefCell::new(None),
            sent: RefCell::new(Vec::new()),
        })
    }

    /// Sends `sql` (statements without parameters) together with the next
    /// call instead of on its own: `BEGIN` then costs no round trip. An
    /// error of `sql` is that call's error.
    pub fn defer_batch(&self, sql: &str) {
        *self.deferred.borrow_mut() = Some(sql.to_owned());
    }

    /// Appends `sql` (statements without parameters) to what
    /// [`Self::defer_batch`] left unsent, in the same message: the server
    /// runs them right after it and answers all at once. Whether there was
    /// anything to append to (if not, nothing was done).
    pub fn append_deferred(&self, sql: &str) -> bool {
        match &mut *self.deferred.borrow_mut() {
            Some(waiting) => {
                waiting.push_str("; ");
                waiting.push_str(sql);
                true
            }
            None => false,
        }
    }

    /// Whether what [`Self::defer_batch`] left unsent is exactly `sql`.
    pub fn deferred_is(&self, sql: &str) -> bool {
        self.deferred.borrow().as_deref() == Some(sql)
    }

    /// Takes back what [`Self::defer_batch`] left unsent; whether there was
    /// any (a transaction that ran no statement has nothing to end).
    pub fn cancel_deferred(&self) -> bool {
        self.deferred.borrow_mut().take().is_some()
    }

    /// Sends `statement` now, after what went before, and returns without
    /// waiting for its answer: the next call reads it (and fails with
    /// [`Error::Sent`], named by `label`, if it failed — before its own
    /// answer, which after a failed statement in a transaction is only the
    /// server's refusal). What [`Self::defer_batch`] left unsent goes
    /// first. For inside a transaction, whose `COMMIT` is then the call
    /// that says whether all of it was written; [`Self::discard_sent`]
    /// before a `ROLLBACK`.
    pub fn send<P>(&self, statement: &Statement, params: Vec<P>, label: Option<i64>) -> Result<(), Error>
    where
        P: types::ToSql + Sync + Send + 'static,
    {
        let mut answers: Vec<Answer> = Vec::with_capacity(2);
        if let Some(sql) = self.deferred.borrow_mut().take() {
            let client = Arc::clone(&self.client);
            answers.push(Box::pin(async move { client.batch_execute(&sql).await.map_err(Error::from) }));
        }
        let client = Arc::clone(&self.client);
        let statement = statement.clone();
        answers.push(Box::pin(async move {
            let refs: Vec<&(dyn types::ToSql + Sync)> =
                params.iter().map(|p| p as &(dyn types::ToSql + Sync)).collect();
            client.execute(&statement, &refs).await.map(drop).map_err(|source| Error::Sent { label, source })
        }));
        // Polled once each, in order: the request is queued on the
        // connection (its parameters encoded); then the runtime turns once,
        // so the connection's task writes it out.
        let refused = self.runtime.block_on(async {
            let mut refused = None;
            for answer in &mut answers {
                if let std::task::Poll::Ready(Err(e)) =
                    std::future::poll_fn(|cx| std::task::Poll::Ready(answer.as_mut().poll(cx))).await
                {
                    refused = Some(e);
                    break;
                }
            }
            tokio::task::yield_now().await;
            refused
        });
        match refused {
            Some(e) => Err(e),
            None => {
                self.sent.borrow_mut().extend(answers);
                Ok(())
            }
        }
    }

    /// Forgets the answers of what was sent ahead ([`Self::send`]): for a
    /// transaction about to be rolled back, whatever they said.
    pub fn discard_sent(&self) {
        self.sent.borrow_mut().clear();
    }

    fn call<T>(&self, work: impl Future<Output = Result<T, tokio_postgres::Error>>) -> Result<T, Error> {
        let deferred = self.deferred.borrow_mut().take();
        let sent = std::mem::take(&mut *self.sent.borrow_mut());
        let both = async {
            let work = async {
                match deferred {
                    None => work.await,
                    Some(sql) => first_then(self.client.batch_execute(&sql), work).await,
                }
                .map_err(Error::from)
            };
            // What was sent ahead answers first (its requests went first),
            // and its error wins: the statements after it only say the
            // transaction was aborted.
            first_then(answers(sent), work).await
        };
        match self.runtime.block_on(async { tokio::time::timeout(self.deadline, both).await }) {
            Ok(result) => result,
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

    /// Runs several statements pipelined: all are sent in one write, in
    /// order, and their rows come back in that order — one round trip for
    /// all. The first error is the answer (the statements after a failed
    /// one in a transaction fail too; outside one, those before it stand).
    pub fn query_pipelined(
        &self,
        calls: &[(&Statement, &[&(dyn types::ToSql + Sync)])],
    ) -> Result<Vec<Vec<Row>>, Error> {
        self.query_pipelined_at(calls).map_err(|(_, e)| e)
    }

    /// [`Self::query_pipelined`], its error with the index of the statement
    /// that failed (`None`: the call as a whole, e.g. no answer in time).
    pub fn query_pipelined_at(
        &self,
        calls: &[(&Statement, &[&(dyn types::ToSql + Sync)])],
    ) -> Result<Vec<Vec<Row>>, (Option<usize>, Error)> {
        all_or_first_error(self.query_pipelined_each(calls, calls.len()).map_err(|e| (None, e))?)
    }

    /// Runs several statements pipelined, as [`Self::query_pipelined`], and
    /// returns each one's own answer, in order: `None` for one never sent
    /// (a request before it could not be sent) or, past the deadline, not
    /// answered. The error is the call's as a whole (no answer in time, the
    /// connection gone) — but once the first `required` statements have
    /// answered, the deadline passing only leaves the rest unanswered (the
    /// connection is given up all the same): a read pipelined after a
    /// `COMMIT` that was answered does not turn that commit into an error.
    pub fn query_pipelined_each(
        &self,
        calls: &[(&Statement, &[&(dyn types::ToSql + Sync)])],
        required: usize,
    ) -> Result<Vec<StatementAnswer>, Error> {
        let mut futures: Vec<_> =
            calls.iter().map(|(statement, params)| Box::pin(self.client.query(*statement, params))).collect();
        type Pending = Option<Result<Vec<Row>, tokio_postgres::Error>>;
        let answers: RefCell<Vec<Pending>> = RefCell::new((0..futures.len()).map(|_| None).collect());
        let all = async {
            // How many requests were handed to the connection (polled once).
            let mut sent = 0;
            // A request failed on its first poll: it was never sent (its
            // parameters could not be encoded, the connection is gone), and
            // the ones after it are not sent either — a transaction's
            // `COMMIT` never follows a statement that did not run.
            let mut stopped = false;
            // Polled in order: each request is queued on the connection
            // before the next one's.
            std::future::poll_fn(|cx| {
                let mut results = answers.borrow_mut();
                for (index, (future, result)) in futures.iter_mut().zip(results.iter_mut()).enumerate() {
                    if result.is_some() {
                        continue;
                    }
                    let first = index >= sent;
                    if first && stopped {
                        break;
                    }
                    if first {
                        sent = index + 1;
                    }
                    if let std::task::Poll::Ready(r) = future.as_mut().poll(cx) {
                        let refused = first && r.is_err();
                        *result = Some(r);
                        if refused {
                            stopped = true;
                            break;
                        }
                    }
                }
                let answered = results[..sent].iter().all(Option::is_some);
                if answered && (stopped || sent == results.len()) {
                    std::task::Poll::Ready(())
                } else {
                    std::task::Poll::Pending
                }
            })
            .await;
            Ok::<_, tokio_postgres::Error>(())
        };
        let outcome = self.call(all);
        let answers = answers.into_inner();
        let answered = answers.iter().take(required).all(Option::is_some);
        match outcome {
            Ok(()) => {}
            Err(Error::TimedOut(_)) if answered => {}
            Err(e) => return Err(e),
        }
        Ok(answers.into_iter().map(|r| r.map(|r| r.map_err(Error::from))).collect())
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

/// One statement's own answer in a pipeline ([`Client::query_pipelined_each`]):
/// `None` when it was never sent, or not answered in time.
pub type StatementAnswer = Option<Result<Vec<Row>, Error>>;

/// The answers of [`Client::query_pipelined_each`] as
/// [`Client::query_pipelined_at`] gives them: every statement's rows (none
/// for one never sent), or the first error with its statement's index.
pub fn all_or_first_error(answers: Vec<StatementAnswer>) -> Result<Vec<Vec<Row>>, (Option<usize>, Error)> {
    let mut all = Vec::with_capacity(answers.len());
    for (index, answer) in answers.into_iter().enumerate() {
        match answer {
            Some(Err(e)) => return Err((Some(index), e)),
            Some(Ok(rows)) => all.push(rows),
            None => all.push(Vec::new()),
        }
    }
    Ok(all)
}

/// Connects with `tls` and spawns the task that drives the connection
/// (while a call waits) and keeps what the server sends unasked:
/// notifications.
async fn start<T>(
    runtime: &Runtime,
    config: &tokio_postgres::Config,
    tls: T,
    within: Duration,
    notifications: mpsc::UnboundedSender<Notification>,
) -> Result<tokio_postgres::Client, Error>
where
    T: MakeTlsConnect<tokio_postgres::Socket> + 'static,
    T::Stream: Send + 'static,
{
    let (client, mut connection) =
        tokio::time::timeout(within, config.connect(tls)).await.map_err(|_| Error::TimedOut(within))??;
    runtime.spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    let _ = notifications.send(n);
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return,
            }
        }
    });
    Ok(client)
}

/// The answers of statements sent ahead, all read; the first error.
async fn answers(mut sent: Vec<Answer>) -> Result<(), Error> {
    let mut first_error = None;
    for answer in &mut sent {
        if let Err(e) = answer.await {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Runs `first` and `then` pipelined: `first` is polled first, so its
/// request is queued on the connection before `then`'s, and both go out in
/// one write; `first`'s error wins.
async fn first_then<T, E>(
    first: impl Future<Output = Result<(), E>>,
    then: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    let mut first = std::pin::pin!(first);
    let mut then = std::pin::pin!(then);
    let mut first_done = None;
    let mut then_done = None;
    std::future::poll_fn(|cx| {
        if first_done.is_none() {
            if let std::task::Poll::Ready(r) = first.as_mut().poll(cx) {
                first_done = Some(r);
            }
        }
        if then_done.is_none() {
            if let std::task::Poll::Ready(r) = then.as_mut().poll(cx) {
                then_done = Some(r);
            }
        }
        if first_done.is_some() && then_done.is_some() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    first_done.expect("polled to the end")?;
    then_done.expect("polled to the end")
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
