//! The second build of the test `EchoConnector`: same class and name, new
//! behaviour (it reports build 2 and subscribes to documents as well).

const BUILD: u32 = 2;

#[path = "../../testkit/src/echo.rs"]
mod echo;

use connector_abi::export_connectors;
use echo::EchoConnector;

export_connectors!(EchoConnector);
