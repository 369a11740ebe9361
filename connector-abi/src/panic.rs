//! Panic payloads as text: what the SDK reports when a connector method
//! panics (and the daemon when its own code does).

use std::any::Any;

/// Renders a panic payload as text.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-text payload".to_owned()
    }
}
