//! `Caller`: who sends a request, for the event log — the configured
//! `auth_user` (the person the access token, or the loopback machine,
//! stands for) and the client's address.

use super::error::ApiError;
use super::AppState;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use bus_core::eventlog::Actor;
use std::net::SocketAddr;

/// The actor of a management request.
pub struct Caller(pub Actor);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let address = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(peer)| peer.ip().to_string());
        Ok(Caller(Actor { user: state.auth_user.to_string(), address }))
    }
}
