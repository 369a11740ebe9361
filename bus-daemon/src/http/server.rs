//! The HTTP server: the accept loop with the limits of `[http]` — at most
//! `max_connections` open connections, where a full table closes the
//! connection that has waited longest without sending a request (a flood of
//! half-sent requests cannot lock clients out; a connection closed that way
//! or at a stop finishes a request it is in), a header timeout that also
//! closes idle keep-alive connections and shrinks to a second while more
//! than half the table is taken (and a few seconds after), optional TLS — and a graceful stop that
//! waits at most a grace period.

use super::connections::{Busy, Connections, Entry};
use crate::config::HttpConfig;
use anyhow::{Context, Result};
use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::rustls;
use tokio_rustls::TlsAcceptor;
use tower_service::Service;

/// How long stopping waits for requests in progress.
pub const GRACE: Duration = Duration::from_secs(2);
/// A pause after a failed accept (e.g. out of file descriptors), so the
/// loop does not spin while the condition lasts.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Reads a PEM certificate chain and private key into a TLS acceptor.
pub fn tls_acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("cannot read tls_cert {}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("tls_cert {} is not a PEM certificate chain", cert.display()))?;
    if chain.is_empty() {
        anyhow::bail!("tls_cert {} holds no certificate", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("tls_key {} is not a PEM private key", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("the TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("tls_cert and tls_key do not make a usable certificate")?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves `router` on `listener` until `stop` completes, then waits at most
/// [`GRACE`] for requests in progress.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: &HttpConfig,
    tls: Option<TlsAcceptor>,
    stop: impl Future<Output = ()>,
) -> Result<()> {
    let table = Arc::new(Connections::new(limits.max_connections));
    let header_timeout = Duration::from_millis(limits.header_timeout_ms);
    // Every connection task holds a receiver: the sender learns when the
    // last one has ended.
    let (stopping, _) = watch::channel(false);
    let sweeper = tokio::spawn(sweep(table.clone()));
    tokio::pin!(stop);
    'accept: loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        // Room for the newcomer: when the table is full, the connection that
        // has waited longest without a request goes (never this one, which
        // is not in the table yet); when every one is in a request, the
        // newcomer waits, unserved, as it would in the listen backlog.
        while !table.make_room() {
            tokio::select! {
                () = table.room.notified() => {}
                () = &mut stop => break 'accept,
            }
        }
        let _ = stream.set_nodelay(true);
        let entry = table.open();
        let router = router.clone();
        let phase = entry.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            let mut router = router.clone();
            // In a request from here until its answer is written.
            let busy = phase.busy();
            async move {
                let answer = router.call(request).await;
                answer.map(|response| response.map(|body| Answering { body, _busy: busy }))
            }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder.timer(TokioTimer::new()).header_read_timeout(header_timeout);
        let stopping = stopping.subscribe();
        let table = table.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => drive(builder.serve_connection(TokioIo::new(stream), service), &entry, stopping, peer).await,
                Some(acceptor) => {
                    // The handshake is bound by the header timeout too.
                    match tokio::time::timeout(header_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            let connection = builder.serve_connection(TokioIo::new(stream), service);
                            drive(connection, &entry, stopping, peer).await
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
            table.close(&entry);
        });
    }
    drop(listener);
    sweeper.abort();
    stopping.send_replace(true);
    tokio::select! {
        () = stopping.closed() => {}
        () = tokio::time::sleep(GRACE) => {
            tracing::warn!(grace_ms = GRACE.as_millis() as u64, "requests still in progress after the grace period; stopping anyway");
        }
    }
    Ok(())
}

/// How long a connection closed to make room (or at a stop) may take to
/// finish what it was doing when it was not in a request: the rest of an
/// answer it is writing, a request head just completing.
const FINISH: Duration = Duration::from_secs(1);

/// Serves one connection until it ends, or until it is closed to make room
/// or the server stops: then it finishes what it is doing — a request in
/// progress to its end (hyper closes the connection after the answer),
/// anything else within [`FINISH`].
async fn drive<I, S>(
    connection: hyper::server::conn::http1::Connection<I, S>,
    entry: &Entry,
    mut stopping: watch::Receiver<bool>,
    peer: std::net::SocketAddr,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    S: hyper::service::HttpService<hyper::body::Incoming, ResBody = Answering>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    tokio::pin!(connection);
    let why = tokio::select! {
        ended = connection.as_mut() => {
            if let Err(e) = ended {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            return;
        }
        () = entry.shed.notified() => "to make room",
        _ = stopping.wait_for(|stopping| *stopping) => "the server stops",
    };
    tracing::debug!(%peer, why, "closing the connection");
    connection.as_mut().graceful_shutdown();
    if entry.in_request() {
        let _ = connection.await;
    } else {
        let _ = tokio::time::timeout(FINISH, connection).await;
    }
}

/// An answer's body: its connection counts as in a request until hyper has
/// written all of it (a large answer to a slow reader is not "waiting").
struct Answering {
    body: axum::body::Body,
    _busy: Busy,
}

impl hyper::body::Body for Answering {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// How often connections are checked for having waited too long under
/// pressure.
const SWEEP_EVERY: Duration = Duration::from_millis(200);
/// The header timeout while more than half the connections are taken (and
/// for [`PRESSURE_LINGER`] after): a
/// client that has sent no complete request head for this long is closed
/// (the configured `header_timeout_ms` applies otherwise).
const PRESSURE_HEADER_TIMEOUT: Duration = Duration::from_secs(1);

/// How long the pressure lasts after the table was last more than half
/// full: long enough for a flood's last connections to count as waited.
const PRESSURE_LINGER: Duration = Duration::from_secs(5);

/// Under pressure, closes the connections that have waited longer than
/// [`PRESSURE_HEADER_TIMEOUT`] for a request head: a flood of half-sent
/// requests clears in about a second instead of holding every slot for the
/// whole header timeout.
async fn sweep(table: Arc<Connections>) {
    let mut tick = tokio::time::interval(SWEEP_EVERY);
    loop {
        tick.tick().await;
        let shed = table.shed_idle_under_pressure(PRESSURE_HEADER_TIMEOUT, PRESSURE_LINGER);
        if shed > 0 {
            tracing::info!(shed, "closed connections that sent no request while the server was busy");
        }
    }
}
