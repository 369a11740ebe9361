//! HTTP request metrics: requests by route template, method and status, and
//! a latency histogram by route. Routes are the table's templates
//! (`/api/tasks/{id}`), never raw paths, so the series stay bounded; a
//! request no route matched counts under `unmatched`.

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use bus_core::metrics::{label, Histogram};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Instant;

/// The route label of a request no route matched.
const UNMATCHED: &str = "unmatched";

#[derive(Debug, Default)]
struct Series {
    /// By (route, method, status).
    requests: BTreeMap<(String, String, u16), u64>,
    /// By route.
    latency: BTreeMap<String, Histogram>,
}

/// The request metrics of one daemon.
#[derive(Debug, Default)]
pub struct RequestMetrics {
    series: Mutex<Series>,
}

impl RequestMetrics {
    fn record(&self, route: &str, method: &str, status: u16, started: Instant) {
        let mut s = self.series.lock().unwrap_or_else(|p| p.into_inner());
        *s.requests.entry((route.to_owned(), method.to_owned(), status)).or_default() += 1;
        s.latency.entry(route.to_owned()).or_default().observe(started.elapsed());
    }

    /// Appends the counters and histograms in Prometheus text format.
    pub fn render(&self, out: &mut String) {
        let s = self.series.lock().unwrap_or_else(|p| p.into_inner());
        out.push_str("# HELP bus_http_requests_total HTTP requests answered, by route template, method and status.\n");
        out.push_str("# TYPE bus_http_requests_total counter\n");
        for ((route, method, status), n) in &s.requests {
            let _ = writeln!(
                out,
                "bus_http_requests_total{{route=\"{}\",method=\"{method}\",status=\"{status}\"}} {n}",
                label(route)
            );
        }
        out.push_str("# HELP bus_http_request_duration_seconds How long requests took to answer, by route template.\n");
        out.push_str("# TYPE bus_http_request_duration_seconds histogram\n");
        for (route, histogram) in &s.latency {
            histogram.render(out, "bus_http_request_duration_seconds", &format!("route=\"{}\"", label(route)));
        }
    }
}

/// The middleware that counts every request (also those the guard refuses).
pub async fn count(
    axum::extract::State(metrics): axum::extract::State<std::sync::Arc<RequestMetrics>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let route = request.extensions().get::<MatchedPath>().map_or(UNMATCHED, MatchedPath::as_str).to_owned();
    let method = request.method().as_str().to_owned();
    let response = next.run(request).await;
    metrics.record(&route, &method, response.status().as_u16(), started);
    response
}
