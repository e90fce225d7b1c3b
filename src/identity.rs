//! Manager identities: what a [`Block`](crate::Block) handle names its
//! manager by, so a handle of another manager — or of this one before a
//! [`reset`](crate::MemoryManager::reset) — is refused.
//!
//! An id is a `u64` that is never handed out twice in a process, by
//! construction: ids come in ranges of [`IDS_PER_RANGE`] from one global
//! counter that only ever goes up and refuses to wrap (it would take 2^48
//! managers, on targets without 64-bit atomics 2^32, and then creating a
//! manager panics rather than repeat an id). A manager takes one range when
//! it is made and uses the next id of it at each reset, taking a new range
//! when its range is used up, so a reset costs no atomic operation in all
//! but one of 65,536 cases and nothing that grows.
//!
//! A handle's id is then one of three things for a manager: its current id
//! (live, check the slot); an earlier id of its current or previous range
//! (stale: from before a reset); anything else (foreign — another manager's,
//! or one of this manager's from more than 65,536 resets ago, the one case
//! where a stale handle is reported as foreign). Memory and time per check
//! are constant however many resets there were.
#![deny(unsafe_code)]

/// Ids in one range: the resets a manager goes through before it takes a
/// new range.
const IDS_PER_RANGE: u64 = 1 << 16;

/// Takes the next unused range and returns its first id.
///
/// # Panics
///
/// Panics when every range has been handed out (2^48 of them; 2^32 on
/// targets without 64-bit atomics) rather than hand one out twice.
fn take_range() -> u64 {
    /// The first range number whose ids would not fit in a `u64`.
    const END: u64 = u64::MAX / IDS_PER_RANGE;
    #[cfg(target_has_atomic = "64")]
    static NEXT_RANGE: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(1);
    #[cfg(not(target_has_atomic = "64"))]
    static NEXT_RANGE: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(1);
    // Range 0 is never handed out, so no id is 0.
    //
    // Relaxed is enough: uniqueness needs only that the read-modify-writes
    // of one atomic are totally ordered (each reads the value the one before
    // it wrote), which holds at every ordering. No other memory is published
    // through the counter: an id is compared, never followed.
    #[allow(clippy::unnecessary_cast)] // the counter is a `usize` without 64-bit atomics
    let range = NEXT_RANGE
        .fetch_update(
            core::sync::atomic::Ordering::Relaxed,
            core::sync::atomic::Ordering::Relaxed,
            |r| r.checked_add(1).filter(|&next| (next as u64) <= END),
        )
        .map(|r| r as u64);
    match range {
        Ok(r) => r * IDS_PER_RANGE,
        Err(_) => panic!("memory_mgr: manager ids are used up"),
    }
}

/// The identity of one manager's checked blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Identity {
    /// The id handles made now carry.
    current: u64,
    /// First id of the range `current` is in.
    range: u64,
    /// First id of the range before it, or 0 for none.
    previous_range: u64,
}

impl Identity {
    /// A fresh identity, shared with no other manager ever.
    pub(crate) fn new() -> Self {
        let range = take_range();
        Identity {
            current: range,
            range,
            previous_range: 0,
        }
    }

    /// The id handles made now carry.
    #[inline(always)]
    pub(crate) fn id(&self) -> u64 {
        self.current
    }

    /// Moves to a new id (at a reset): handles with the old one become stale.
    pub(crate) fn retire(&mut self) {
        if self.current + 1 < self.range + IDS_PER_RANGE {
            self.current += 1;
        } else {
            self.previous_range = self.range;
            self.range = take_range();
            self.current = self.range;
        }
    }

    /// Whether `id` is one this identity had before a reset (a stale handle
    /// of this manager rather than a foreign one).
    pub(crate) fn is_retired(&self, id: u64) -> bool {
        let in_range = |base: u64| base != 0 && (base..base + IDS_PER_RANGE).contains(&id);
        (in_range(self.range) && id < self.current) || in_range(self.previous_range)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_never_repeat_and_remember_their_own_past() {
        let mut a = Identity::new();
        let b = Identity::new();
        assert_ne!(a.id(), b.id());
        assert!(!a.is_retired(b.id()) && !b.is_retired(a.id()));
        let first_range = a.range;
        // Run up to the end of the range and past it: every id is new, every
        // old one of this range and the previous one is retired.
        let mut seen = std::collections::BTreeSet::new();
        let mut old = std::vec::Vec::new();
        a.current = a.range + IDS_PER_RANGE - 20;
        for _ in 0..40 {
            assert!(seen.insert(a.id()));
            old.push(a.id());
            a.retire();
            assert_ne!(a.id(), b.id());
            assert!(old.iter().all(|&id| a.is_retired(id)));
            assert!(!a.is_retired(a.id()));
            assert!(!a.is_retired(b.id()));
        }
        assert_eq!(a.previous_range, first_range);
        assert_ne!(a.range, first_range);
        // Two ranges back, a handle is foreign.
        a.current = a.range + IDS_PER_RANGE - 1;
        a.retire();
        assert!(!a.is_retired(old[0]));
    }

    #[test]
    fn ids_taken_on_many_threads_are_distinct() {
        let threads = if cfg!(miri) { 3 } else { 8 };
        let per = if cfg!(miri) { 5 } else { 1000 };
        let ids: std::vec::Vec<u64> = std::thread::scope(|s| {
            let handles: std::vec::Vec<_> = (0..threads)
                .map(|_| {
                    s.spawn(|| {
                        (0..per)
                            .map(|_| Identity::new().id())
                            .collect::<std::vec::Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        let unique: std::collections::BTreeSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
    }
}
