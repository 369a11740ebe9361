//! `GET /metrics`: Prometheus text — the build; per registered connector:
//! load state, queue depth and age of the oldest task per direction (0 when
//! empty), tasks processed by result, call latency; the number of
//! reinitializations; HTTP requests by route template, method and status.

use super::error::{blocking, ApiError};
use super::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use bus_core::metrics::label;
use bus_core::queue_admin;
use std::collections::BTreeMap;
use std::fmt::Write;

pub async fn metrics(State(s): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let stats = {
        let db = s.db.clone();
        blocking(move || Ok(queue_admin::stats(&*db.connect()?)?)).await?
    };
    let set = s.manager.current();
    let mut out = String::with_capacity(4096);
    out.push_str("# HELP bus_build_info The daemon's version and the commit it was built from (always 1).\n");
    out.push_str("# TYPE bus_build_info gauge\n");
    let _ = writeln!(
        out,
        "bus_build_info{{version=\"{}\",commit=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION"),
        label(env!("BUS_COMMIT"))
    );
    out.push_str("# HELP bus_connector_loaded 1 when the connector runs, 0 when it is disabled or failed to load.\n");
    out.push_str("# TYPE bus_connector_loaded gauge\n");
    for (name, st) in &set.status {
        let _ = writeln!(out, "bus_connector_loaded{{connector=\"{}\"}} {}", label(name), u8::from(st.loaded));
    }
    out.push_str("# HELP bus_connector_load_error 1 when the connector's last load failed.\n");
    out.push_str("# TYPE bus_connector_load_error gauge\n");
    for (name, st) in &set.status {
        let _ =
            writeln!(out, "bus_connector_load_error{{connector=\"{}\"}} {}", label(name), u8::from(st.error.is_some()));
    }
    out.push_str("# HELP bus_connector_hung 1 while a call into the connector has run past the call timeout.\n");
    out.push_str("# TYPE bus_connector_hung gauge\n");
    for (name, live) in &set.live {
        let _ = writeln!(
            out,
            "bus_connector_hung{{connector=\"{}\"}} {}",
            label(name),
            u8::from(live.hung_for().is_some())
        );
    }
    out.push_str("# HELP bus_connector_restarts_total How often the connector's process was started again after a crash or a kill (process isolation; per instance).\n");
    out.push_str("# TYPE bus_connector_restarts_total counter\n");
    for (name, live) in &set.live {
        let _ = writeln!(out, "bus_connector_restarts_total{{connector=\"{}\"}} {}", label(name), live.restarts());
    }
    if let Some(cluster) = s.manager.cluster() {
        out.push_str(
            "# HELP bus_cluster_leases_held Connectors whose leases this daemon holds (PostgreSQL cluster).\n",
        );
        out.push_str("# TYPE bus_cluster_leases_held gauge\n");
        let _ = writeln!(out, "bus_cluster_leases_held {}", cluster.held().len());
        out.push_str(
            "# HELP bus_cluster_lease_changes_total Connectors this daemon gained or lost since it started.\n",
        );
        out.push_str("# TYPE bus_cluster_lease_changes_total counter\n");
        let _ = writeln!(out, "bus_cluster_lease_changes_total {}", cluster.lease_changes());
        out.push_str("# HELP bus_cluster_leader 1 while this daemon does the cluster's maintenance.\n");
        out.push_str("# TYPE bus_cluster_leader gauge\n");
        let _ = writeln!(out, "bus_cluster_leader {}", u8::from(cluster.is_leader()));
    }
    out.push_str("# HELP bus_connector_reinitializations_total How many times all connectors were reinitialized.\n");
    out.push_str("# TYPE bus_connector_reinitializations_total counter\n");
    let _ = writeln!(out, "bus_connector_reinitializations_total {}", s.manager.reinitializations());
    // Every registered connector has both queues: an empty one reads 0
    // (a series that vanished would look like a scrape gap, not "drained").
    let mut queues: BTreeMap<(&str, &str), (i64, f64)> = BTreeMap::new();
    for name in set.status.keys() {
        for direction in ["incoming", "outgoing"] {
            queues.insert((name.as_str(), direction), (0, 0.0));
        }
    }
    for q in &stats {
        let direction = if q.inbound { "incoming" } else { "outgoing" };
        queues.insert((q.connector.as_str(), direction), (q.depth, q.oldest_age_seconds));
    }
    out.push_str("# HELP bus_queue_depth Tasks waiting, by connector and direction.\n");
    out.push_str("# TYPE bus_queue_depth gauge\n");
    for ((connector, direction), (depth, _)) in &queues {
        let _ =
            writeln!(out, "bus_queue_depth{{connector=\"{}\",direction=\"{direction}\"}} {depth}", label(connector));
    }
    out.push_str(
        "# HELP bus_queue_oldest_task_age_seconds How long the oldest waiting task has waited (0 when none waits).\n",
    );
    out.push_str("# TYPE bus_queue_oldest_task_age_seconds gauge\n");
    for ((connector, direction), (_, age)) in &queues {
        let _ = writeln!(
            out,
            "bus_queue_oldest_task_age_seconds{{connector=\"{}\",direction=\"{direction}\"}} {age:.3}",
            label(connector)
        );
    }
    // Connectors that left the registry (deleted, renamed) leave the scrape.
    s.metrics.retain(|name| set.status.contains_key(name));
    s.metrics.render(&mut out);
    s.requests.render(&mut out);
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], out))
}
