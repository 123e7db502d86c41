import CLockdepThread
package import Glibc

/// A live thread's pending-acquire cell, as other threads find it.
struct PendingCell: @unchecked Sendable {
    let thread: pthread_t
    let cell: UnsafeMutablePointer<clockdep_pending_acquire>
}

extension Lockdep {
    /// The checked lock a thread last began to take and has not released: the lock it is
    /// blocked on when it is blocked on one (what a stall report names).
    package struct PendingAcquire: Sendable, Equatable {
        /// The lock's class name.
        package let lockName: String
        /// The one other thread whose own last unreleased checked acquire is the same lock:
        /// its holder (or another thread waiting for it); `nil` when there is not exactly one.
        package let holder: pthread_t?
        /// The holder's name (empty when `holder` is `nil`).
        package let holderName: String
    }

    /// What `thread` is taking, or last took and still holds, among sleeping checked locks
    /// (mutexes, reader-writer locks; not spinlocks or pseudo-locks).
    ///
    /// For diagnostics from another thread, such as a watchdog naming what a stuck thread
    /// waits for. `nil` when the thread has no Lockdep state, has released every checked
    /// lock it took, or checks are compiled out. Lock pointers are only compared, never
    /// followed, so a lock freed meanwhile is harmless.
    /// - Complexity: O(threads known to Lockdep), under Lockdep's graph lock.
    package static func pendingAcquire(of thread: pthread_t) -> PendingAcquire? {
        graph.withLock { g in
            guard let (_, mine) = g.pendingCells.first(where: { pthread_equal($0.value.thread, thread) != 0 }),
                  let instance = clockdep_pending_instance(mine.cell)
            else { return nil }
            let node = clockdep_pending_node(mine.cell)
            let others = g.pendingCells.filter { serial, entry in
                pthread_equal(entry.thread, thread) == 0 && clockdep_pending_instance(entry.cell) == instance
            }
            let holder = others.count == 1 ? others.first : nil
            return PendingAcquire(
                lockName: g.nodeName(node), holder: holder?.value.thread,
                holderName: holder.map { g.threadNames[$0.key] ?? "thread-\($0.key)" } ?? "")
        }
    }
}
