//! GUIDs for new objects and document nodes: the UUID version 7 layout
//! (RFC 9562), i.e. a millisecond timestamp first, then randomness. Being
//! time-ordered, a new GUID lands at the end of the GUID index instead of on
//! a random page, so a transaction logging many changes touches a few index
//! pages instead of one per change.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A new GUID, e.g. `019ac8f2-1c3e-7a41-9d0e-5b7f3c2a9e11`: later ones sort
/// after earlier ones (within a process), the last 62 bits are random.
pub(crate) fn new_guid() -> String {
    // The 48-bit millisecond timestamp and 12 bits of sequence, as one
    // counter that only grows: two GUIDs of the same millisecond still sort
    // in creation order (RFC 9562, method 3).
    static LAST: AtomicU64 = AtomicU64::new(0);
    let millis = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    let candidate = (millis & 0xffff_ffff_ffff) << 12;
    let stamp = LAST
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| Some(candidate.max(last + 1)))
        .map_or(candidate, |last| candidate.max(last + 1));
    // Each RandomState carries fresh random keys from the operating system.
    let mut h = RandomState::new().build_hasher();
    h.write_u64(stamp);
    let random = (h.finish() & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    let a = ((stamp >> 12) << 16) | 0x7000 | (stamp & 0x0fff);
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xffff,
        random >> 48,
        random & 0xffff_ffff_ffff
    )
}

pub(crate) use crate::text::is_guid;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_are_well_formed_distinct_and_time_ordered() {
        let guids: Vec<String> = (0..10_000).map(|_| new_guid()).collect();
        assert!(guids.iter().all(|g| is_guid(g)), "{guids:?}");
        assert!(guids.windows(2).all(|w| w[0] < w[1]), "GUIDs sort in creation order");
        assert_eq!(&guids[0][14..15], "7", "version 7 layout");
        assert!(matches!(&guids[0][19..20], "8" | "9" | "a" | "b"), "RFC 9562 variant");
        assert!(!is_guid("nope"));
    }
}
