/// Grace-period waits for Swift concurrency: they suspend the task, and no thread of the
/// cooperative pool blocks while the grace period runs.
///
/// In async code these overloads are the ones the compiler picks: a task writes
/// `try await RCUMemb.synchronize()`. The blocking forms stay reachable from synchronous
/// functions; called from a task they are reported by Lockdep's task-context check (see
/// "RCU in async code" in the documentation).
extension RCUFlavor {
    /// Suspends the task until every read section that was open when it was called has
    /// ended: the async form of ``RCUFlavor/synchronize(fileID:line:)-1jddf``.
    ///
    /// Concurrent callers share grace periods: a call waits for the one grace period
    /// that starts after it, and every caller that arrives while that one is in flight
    /// shares the next. Ten thousand tasks calling it at once cost a handful of grace
    /// periods (4 or 5 measured in release), queued as call_rcu callbacks; each pays
    /// liburcu's call_rcu batching delay (about 10 ms) on top of the grace period.
    ///
    /// - Throws: `CancellationError` as soon as the task is cancelled, before or while it
    ///   waits: then no grace period is promised, so do not free what readers may hold.
    ///   The grace period itself goes on for every other waiter.
    /// - Note: Refused, like the blocking form, in a child of an unsafe fork
    ///   (``RCUMisuse/Kind/gracePeriodAfterUnsafeFork``). A task cannot be inside a read
    ///   section or a callback here: both are synchronous closures.
    public static func synchronize(fileID: StaticString = #fileID, line: UInt = #line) async throws(CancellationError) {
        guard mayWaitAsync("synchronize()", fileID: fileID, line: line) else { return }
        let sequence = RCUGracePeriodSequence.of(kind)
        try await sequence.wait(for: sequence.cookie)
    }

    /// Suspends the task until a full grace period has elapsed since `cookie` was taken;
    /// returns at once if one already has. The async form of
    /// ``RCUFlavor/synchronize(since:fileID:line:)-42k1x`` (the kernel's `cond_synchronize_rcu()`).
    ///
    /// - Throws: `CancellationError` when the task is cancelled before the grace period has
    ///   elapsed (a cookie that has already elapsed returns normally, cancelled or not).
    public static func synchronize(
        since cookie: RCUGracePeriodCookie<Self>, fileID: StaticString = #fileID, line: UInt = #line
    ) async throws(CancellationError) {
        guard mayWaitAsync("synchronize(since:)", fileID: fileID, line: line) else { return }
        try await RCUGracePeriodSequence.of(kind).wait(for: cookie.ticket)
    }

    /// Suspends the task until every callback queued before the call has run: the async
    /// form of ``RCUFlavor/barrier(fileID:line:)-3osku``.
    ///
    /// liburcu's `rcu_barrier()` blocks its caller, so one thread per flavor, started when
    /// needed and gone when idle, runs it for the tasks: every task waiting when a barrier
    /// starts shares it, and no thread of the cooperative pool blocks.
    ///
    /// - Throws: `CancellationError` when the task is cancelled first; the barrier runs on
    ///   for the other waiters.
    public static func barrier(fileID: StaticString = #fileID, line: UInt = #line) async throws(CancellationError) {
        guard mayWaitAsync("barrier()", fileID: fileID, line: line) else { return }
        try await RCUGracePeriodSequence.of(kind).barrier()
    }

    /// The async waits' one refusal: in a child of an unsafe fork no grace period can end.
    /// An allowed wait starts the stall watchdog, as a blocking one does: a program that only
    /// awaits would otherwise hang behind a stuck reader without a word (the watchdog sees the
    /// awaited grace period as the call_rcu backlog that makes no progress).
    static func mayWaitAsync(_ call: StaticString, fileID: StaticString, line: UInt) -> Bool {
        guard staleReadersAfterFork > 0 else {
            lockdepAwaitedGracePeriod(call, fileID, line)
            RCUStallDetector.enable()
            return true
        }
        RCUMisuse.report(.gracePeriodAfterUnsafeFork, call: "\(call)", flavor: name, fileID: fileID, line: line)
        return false
    }
}

extension RCUPointer {
    /// Publishes `new`, suspends the task for a grace period, then releases the previous
    /// object in the task: the async form of ``RCUPointer/replaceAndSynchronize(with:fileID:line:)-3kjai``.
    ///
    /// Refused whole in a child of an unsafe fork, as the blocking form is: nothing is
    /// published and the old object stays.
    ///
    /// - Throws: `CancellationError` when the task is cancelled during the wait. `new` is
    ///   published either way, and the previous object is then retired
    ///   (``RCUFlavor/retire(_:)-(AnyObjectSendable)``) instead of released in the task:
    ///   it is freed after a grace period all the same.
    public func replaceAndSynchronize(
        with new: consuming Value?, fileID: StaticString = #fileID, line: UInt = #line
    ) async throws(CancellationError) {
        guard Flavor.mayWaitAsync("replaceAndSynchronize(with:)", fileID: fileID, line: line) else { return }
        guard let old = publish(new) else { return }
        let sequence = RCUGracePeriodSequence.of(Flavor.kind)
        do {
            try await sequence.wait(for: sequence.cookie)
        } catch {
            Flavor.primitiveCall(RCUCallbacks.releaseObject, old)
            throw error
        }
        Unmanaged<AnyObject>.fromOpaque(old).release()
    }
}
