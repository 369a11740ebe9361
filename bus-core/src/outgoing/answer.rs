//! A connector's answer to a delivery, bounded before anything records it:
//! its error text is cut to [`MAX_ERROR`] bytes (at a character boundary,
//! with the cut stated), so one answer cannot grow the log, the sync log
//! or the event log by more than that.

use crate::connector::CallError;
use connector_abi::protocol::ProcessResponse;

/// The longest error text kept from one answer, in bytes.
pub(crate) const MAX_ERROR: usize = 4096;

/// The answer, or the failed call as an `Error` answer; either way with its
/// error text bounded.
pub(crate) fn bounded(answer: Result<ProcessResponse, CallError>) -> ProcessResponse {
    let mut response = answer.unwrap_or_else(|e| ProcessResponse::error(e.to_string()));
    if let Some(message) = response.error_message.take() {
        response.error_message = Some(cut(message));
    }
    response
}

/// `text`, or its first [`MAX_ERROR`] bytes and how long it was.
pub(crate) fn cut(text: String) -> String {
    if text.len() <= MAX_ERROR {
        return text;
    }
    let mut end = MAX_ERROR;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{} … [cut: the message has {} bytes]", &text[..end], text.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_are_cut_at_a_character_boundary() {
        assert_eq!(cut("short".into()), "short");
        let long = "é".repeat(MAX_ERROR); // two bytes each
        let got = cut(long.clone());
        assert!(got.starts_with(&"é".repeat(MAX_ERROR / 2)));
        assert!(got.ends_with(&format!("[cut: the message has {} bytes]", long.len())));
        let odd = format!("a{}", "é".repeat(MAX_ERROR));
        assert!(cut(odd).len() < MAX_ERROR + 64);
    }
}
