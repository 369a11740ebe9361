//! The binary surface between the host and a connector library.
//!
//! This module is **frozen at ABI version 1**. abi_stable refuses to load a
//! library whose interface is older than the host's (adding a trait method or
//! a root-module field makes every connector built before fail with
//! `FieldCountMismatch`), and hosts are upgraded more often than their
//! plugins. So nothing here may ever change: new capabilities travel as new
//! request kinds and optional fields inside the JSON documents of
//! [`crate::protocol`].
//!
//! Connector authors never use this module directly; `export_connectors!`
//! builds all of it for them.

// abi_stable's sabi_trait expansion implements foreign traits inside a const block.
#![allow(non_local_definitions)]

use abi_stable::{
    declare_root_module_statics,
    library::RootModule,
    sabi_trait,
    sabi_types::VersionStrings,
    std_types::{RBox, RResult, RSlice, RStr, RString, RVec},
    StableAbi,
};

/// The version of the binary surface. It is never bumped: the binary surface
/// is frozen and evolution happens in the protocol documents.
pub const ABI_VERSION: u32 = 1;

/// A connector instance as the host sees it: one JSON request in, one JSON
/// response out, plus shutdown.
#[sabi_trait]
pub trait ConnectorObject: Send + Sync {
    /// Handles one request document (see [`crate::protocol::kind`]) and
    /// returns the response document. `Err` means the call itself failed
    /// (e.g. the connector panicked); the message says why.
    fn call(&self, request: RSlice<'_, u8>) -> RResult<RVec<u8>, RString>;

    /// Releases the connector's resources. Called once, when the host
    /// replaces or drops this instance.
    #[sabi(last_prefix_field)]
    fn shutdown(&self);
}

/// The host as a connector sees it: one JSON request in
/// (see [`crate::protocol::host_kind`]), one JSON response out.
#[sabi_trait]
pub trait HostObject: Send + Sync {
    /// Handles one request document from the connector (see
    /// [`crate::protocol::host_kind`]) and returns the response document. `Err`
    /// means the call itself failed; the message says why.
    #[sabi(last_prefix_field)]
    fn call(&self, request: RSlice<'_, u8>) -> RResult<RVec<u8>, RString>;
}

/// An owned connector instance, as it crosses the library boundary.
pub type ConnectorBox = ConnectorObject_TO<'static, RBox<()>>;
/// An owned host handle, as it crosses the library boundary.
pub type HostBox = HostObject_TO<'static, RBox<()>>;

/// The root module every connector library exports.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = ConnectorLibRef)))]
#[sabi(missing_field(panic))]
pub struct ConnectorLib {
    /// Always [`ABI_VERSION`].
    pub abi_version: u32,
    /// The connector classes this library exports.
    pub classes: extern "C" fn() -> RVec<RString>,
    /// Creates one connector of `class`, handing it its registry
    /// configuration text and a host handle.
    #[sabi(last_prefix_field)]
    pub new_connector:
        extern "C" fn(class: RStr<'_>, config: RStr<'_>, host: HostBox) -> RResult<ConnectorBox, RString>,
}

impl RootModule for ConnectorLibRef {
    declare_root_module_statics! {ConnectorLibRef}
    const BASE_NAME: &'static str = "connector";
    const NAME: &'static str = "integration bus connector";
    // Fixed on purpose: abi_stable compares these numbers, and a connector
    // must keep loading whatever version of this crate the host is built with.
    const VERSION_STRINGS: VersionStrings = VersionStrings::new("1.0.0");
}
