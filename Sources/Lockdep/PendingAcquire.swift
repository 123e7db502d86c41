import CLockdepThread
package import Glibc

/// A live thread's pending-acquire cell, as other threads find it.
struct PendingCell: @unchecked Sendable {
    let thread: pthread_t
    let cell: UnsafeMutablePointer<clockdep_pending_acquire>
}

extension Lockdep {
    /// The checked lock a thread is blocked on (its first try found it taken), with the
    /// thread that held it when the wait began.
    package struct PendingAcquire: Sendable, Equatable {
        /// The lock's class name.
        package let lockName: String
        /// The thread that held the lock exclusively when the wait began; `nil` when none did
        /// (a reader-writer lock held for read) or that thread has exited.
        package let holder: pthread_t?
        /// The holder's name (empty when `holder` is `nil`).
        package let holderName: String
    }

    /// The sleeping checked lock (a mutex, a reader-writer lock; not a spinlock or a
    /// pseudo-lock) `thread` is blocked on, if any.
    ///
    /// For diagnostics from another thread, such as a watchdog naming what a stuck thread
    /// waits for. `nil` when the thread has no Lockdep state, is not waiting for a checked
    /// lock, or checks are compiled out. Lock pointers are never followed, so a lock freed
    /// meanwhile is harmless.
    /// - Complexity: O(threads known to Lockdep), under Lockdep's graph lock.
    package static func pendingAcquire(of thread: pthread_t) -> PendingAcquire? {
        graph.withLock { g in
            guard let (_, mine) = g.pendingCells.first(where: { pthread_equal($0.value.thread, thread) != 0 })
            else { return nil }
            let nodePlusOne = clockdep_pending_node_plus_one(mine.cell)
            guard nodePlusOne != 0 else { return nil }
            let node = nodePlusOne - 1
            let word = clockdep_pending_holder(mine.cell)
            // The owner word is `serial << 1 | 1`; the cells are listed by serial.
            let serial = word >> 1
            let holder = word & 1 != 0 ? g.pendingCells[serial] : nil
            return PendingAcquire(
                lockName: g.nodeName(node), holder: holder?.thread,
                holderName: holder.map { _ in g.threadNames[serial] ?? "thread-\(serial)" } ?? "")
        }
    }
}
