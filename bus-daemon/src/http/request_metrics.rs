//! HTTP request metrics: requests by route template, method and status, and
//! a latency histogram by route. Routes are the table's templates
//! (`/api/tasks/{id}`), never raw paths, so the series stay bounded; a
//! request no route matched counts under `unmatched`.

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use bus_core::metrics::{label, Histogram};
use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Instant;

/// The route label of a request no route matched.
const UNMATCHED: &str = "unmatched";

/// One route's figures.
#[derive(Debug, Default)]
struct Route {
    /// Requests by (method, status).
    requests: Vec<(&'static str, u16, u64)>,
    latency: Histogram,
}

/// The request metrics of one daemon.
#[derive(Debug, Default)]
pub struct RequestMetrics {
    /// By route template. Looked up by reference: a request allocates
    /// nothing here once its route has been seen.
    routes: Mutex<HashMap<String, Route>>,
}

impl RequestMetrics {
    fn record(&self, route: &str, method: &'static str, status: u16, started: Instant) {
        let elapsed = started.elapsed();
        let mut routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        if !routes.contains_key(route) {
            routes.insert(route.to_owned(), Route::default());
        }
        let r = routes.get_mut(route).expect("inserted above");
        match r.requests.iter_mut().find(|(m, s, _)| *m == method && *s == status) {
            Some((_, _, n)) => *n += 1,
            None => r.requests.push((method, status, 1)),
        }
        r.latency.observe(elapsed);
    }

    /// Appends the counters and histograms in Prometheus text format.
    pub fn render(&self, out: &mut String) {
        let routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        let mut sorted: Vec<(&String, &Route)> = routes.iter().collect();
        sorted.sort_by_key(|(route, _)| route.as_str());
        out.push_str("# HELP bus_http_requests_total HTTP requests answered, by route template, method and status.\n");
        out.push_str("# TYPE bus_http_requests_total counter\n");
        for (route, r) in &sorted {
            let mut requests = r.requests.clone();
            requests.sort();
            for (method, status, n) in requests {
                let _ = writeln!(
                    out,
                    "bus_http_requests_total{{route=\"{}\",method=\"{method}\",status=\"{status}\"}} {n}",
                    label(route)
                );
            }
        }
        out.push_str("# HELP bus_http_request_duration_seconds How long requests took to answer, by route template.\n");
        out.push_str("# TYPE bus_http_request_duration_seconds histogram\n");
        for (route, r) in &sorted {
            r.latency.render(out, "bus_http_request_duration_seconds", &format!("route=\"{}\"", label(route)));
        }
    }
}

/// The method as a label: the standard ones by name, any other as `other`
/// (a client can send any token as a method: the series stay bounded).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
    }
}

/// The middleware that counts every request (also those the guard refuses).
pub async fn count(
    axum::extract::State(metrics): axum::extract::State<std::sync::Arc<RequestMetrics>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    // A clone of the matched path is a reference count, not a copy.
    let route = request.extensions().get::<MatchedPath>().cloned();
    let method = method_label(request.method());
    let response = next.run(request).await;
    let route = route.as_ref().map_or(UNMATCHED, MatchedPath::as_str);
    metrics.record(route, method, response.status().as_u16(), started);
    response
}
