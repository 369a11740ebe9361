//! A root module that claims to be a connector library but has another
//! layout (the field types differ from the host's `ConnectorLib`), as a
//! library built against a diverged interface would.
#![allow(non_local_definitions)]

use abi_stable::library::RootModule;
use abi_stable::prefix_type::PrefixTypeTrait;
use abi_stable::sabi_types::VersionStrings;
use abi_stable::std_types::{RString, RVec};
use abi_stable::{declare_root_module_statics, export_root_module, StableAbi};

#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = ConnectorLibRef)))]
#[sabi(missing_field(panic))]
pub struct ConnectorLib {
    pub abi_version: u64,
    #[sabi(last_prefix_field)]
    pub classes: extern "C" fn() -> RVec<RString>,
}

impl RootModule for ConnectorLibRef {
    declare_root_module_statics! {ConnectorLibRef}
    const BASE_NAME: &'static str = "connector";
    const NAME: &'static str = "integration bus connector";
    const VERSION_STRINGS: VersionStrings = VersionStrings::new("1.0.0");
}

extern "C" fn classes() -> RVec<RString> {
    RVec::new()
}

#[export_root_module]
fn root() -> ConnectorLibRef {
    ConnectorLib { abi_version: 1, classes }.leak_into_prefix()
}
