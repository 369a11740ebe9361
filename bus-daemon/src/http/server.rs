//! The HTTP server: the accept loop with the limits of `[http]` — at most
//! `max_connections` open connections, where a full table closes the
//! connection that has waited longest without sending a request (a flood of
//! half-sent requests cannot lock clients out), a header timeout that also
//! closes idle keep-alive connections and shrinks to a second while more
//! than half the table is taken (and a few seconds after), optional TLS — and a graceful stop that
//! waits at most a grace period.

use super::connections::Connections;
use crate::config::HttpConfig;
use anyhow::{Context, Result};
use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
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
    let graceful = GracefulShutdown::new();
    let sweeper = tokio::spawn(sweep(table.clone()));
    tokio::pin!(stop);
    loop {
        // Room first: when full, the connection that has waited longest
        // without sending a request goes; only when every connection is in
        // a request do newcomers wait (in the listen backlog).
        while !table.make_room() {
            tokio::select! {
                () = table.room.notified() => {}
                () = &mut stop => return finish(listener, graceful, sweeper).await,
            }
        }
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
        let _ = stream.set_nodelay(true);
        let entry = table.open();
        let router = router.clone();
        let phase = entry.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            let mut router = router.clone();
            let busy = phase.busy();
            async move {
                let answer = router.call(request).await;
                drop(busy);
                answer
            }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder.timer(TokioTimer::new()).header_read_timeout(header_timeout);
        let watcher = graceful.watcher();
        let table = table.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let served = async {
                match tls {
                    None => watcher.watch(builder.serve_connection(TokioIo::new(stream), service)).await,
                    Some(acceptor) => {
                        // The handshake is bound by the header timeout too.
                        let stream = match tokio::time::timeout(header_timeout, acceptor.accept(stream)).await {
                            Ok(Ok(stream)) => stream,
                            Ok(Err(e)) => return tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                            Err(_) => return tracing::debug!(%peer, "TLS handshake timed out"),
                        };
                        watcher.watch(builder.serve_connection(TokioIo::new(stream), service)).await
                    }
                }
                .unwrap_or_else(|e| tracing::debug!(%peer, error = %e, "connection ended with an error"))
            };
            tokio::select! {
                () = served => {}
                () = entry.shed.notified() => tracing::debug!(%peer, "connection closed to make room (it sent no request)"),
            }
            table.close(&entry);
        });
    }
    finish(listener, graceful, sweeper).await
}

/// Stops accepting and waits at most [`GRACE`] for requests in progress.
async fn finish(listener: TcpListener, graceful: GracefulShutdown, sweeper: tokio::task::JoinHandle<()>) -> Result<()> {
    drop(listener);
    sweeper.abort();
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(GRACE) => {
            tracing::warn!(grace_ms = GRACE.as_millis() as u64, "requests still in progress after the grace period; stopping anyway");
        }
    }
    Ok(())
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
