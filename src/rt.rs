//! Runtime helpers shared by every module: lock access that survives poisoning, and the
//! allocator setting of a long-running replicator.
//!
//! What must stay true: a panic while a lock was held never makes later callers panic too —
//! every guarded value in walstream is replaced or updated in single statements, so the value
//! a poisoned lock holds is still consistent, and on-disk state is re-verified by its owners.

use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Locks `m`, recovering the guard from a poisoned lock.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Read-locks `l`, recovering from poisoning.
pub fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Write-locks `l`, recovering from poisoning.
pub fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One glibc malloc arena for a long-running replicator. glibc's default (8 per core) lets each
/// blocking thread that attaches, syncs or compresses allocate from its own arena, and each arena
/// keeps its freed memory resident: measured on the 2-core machine, the initial snapshot of a
/// 1 GiB database peaked at 45–57 MiB resident with the default or two arenas and 34 MiB with
/// one (faster too: fewer page faults), and 1,000 attached databases took 114 KiB per database
/// with the default against 105 KiB with one. Must run before the runtime starts its threads;
/// a no-op on other C libraries.
pub fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; M_ARENA_MAX takes an arena count.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_poisoned_lock_still_hands_out_its_value() {
        let m = std::sync::Arc::new(Mutex::new(7));
        let m2 = std::sync::Arc::clone(&m);
        let _ = std::thread::spawn(move || {
            let _g = m2.lock().expect("first lock");
            panic!("poison it");
        })
        .join();
        assert!(m.is_poisoned());
        assert_eq!(*lock(&m), 7);
        let l = RwLock::new(1);
        *write(&l) += 1;
        assert_eq!(*read(&l), 2);
    }
}
