/// What ``RCUFlavor/barrier(untilQuiet:fileID:line:)-8fmjj`` found: whether the flavor's callbacks
/// ran out, and after how many barriers.
public struct RCUQuietBarrierResult: Sendable, Hashable {
    /// Whether no callback was pending after the last barrier: every callback queued before
    /// the call has run, and so has every callback those queued, to the end of each chain.
    public var isQuiet: Bool
    /// Barriers run (at least one; at most the limit given).
    public var rounds: Int
    /// Callbacks still pending after the last barrier (0 when ``isQuiet``).
    public var pendingCallbacks: Int
}

extension RCUFlavor {
    /// Waits until no callback of this flavor is pending, even when callbacks queue further
    /// callbacks (a callback that retires an object, or queues its own continuation).
    ///
    /// ``RCUFlavor/barrier(fileID:line:)-3osku`` (liburcu's `rcu_barrier`) waits only for the callbacks
    /// queued before it: it queues a marker behind them on every worker and waits for the
    /// markers. A callback that runs meanwhile and queues another puts it behind the marker,
    /// so the barrier can return with that one still pending (whether it does depends on
    /// whether the worker ran the first callback before or after the marker was queued).
    /// This call runs barriers until a barrier ends with no callback pending, which covers
    /// chains of any length that end.
    ///
    /// An endless chain (a callback that always queues another) would keep it waiting
    /// forever, so it gives up after `maximumRounds` barriers and says so in the result
    /// instead of hanging. "No callback pending" counts every callback of the flavor: other
    /// threads that keep retiring also keep it from being quiet.
    ///
    /// Refused where ``RCUFlavor/barrier(fileID:line:)-3osku`` is (in a read section, in a callback, in a
    /// child of an unsafe fork): then it returns at once with `rounds` 0 and `isQuiet` false.
    ///
    /// ```swift
    /// let drained = RCUMemb.barrier(untilQuiet: 32)
    /// precondition(drained.isQuiet, "callbacks still queue callbacks after \(drained.rounds) barriers")
    /// ```
    ///
    /// - Parameters:
    ///   - maximumRounds: The most barriers to run (at least 1). Each takes about 10 ms or
    ///     more (liburcu's worker batching), so 32 rounds bound the wait at a few hundred
    ///     milliseconds plus the callbacks' own time.
    ///   - fileID: The call site, for a misuse report (default `#fileID`).
    ///   - line: The call site's line (default `#line`).
    /// - Returns: Whether the callbacks ran out, the barriers run, and what is still pending.
    public static func barrier(
        untilQuiet maximumRounds: Int, fileID: StaticString = #fileID, line: UInt = #line
    ) -> RCUQuietBarrierResult {
        precondition(maximumRounds >= 1, "barrier(untilQuiet:): maximumRounds must be at least 1, not \(maximumRounds)")
        guard mayWaitForGracePeriod(
            "barrier()", inReadSection: .barrierInReadSection, inCallback: .barrierInCallback,
            fileID: fileID, line: line)
        else { return RCUQuietBarrierResult(isQuiet: false, rounds: 0, pendingCallbacks: pendingCallbacks) }
        var rounds = 0
        while true {
            waitAllowed(barrier: true, primitiveBarrier)
            rounds += 1
            let pending = quietBarrierPending
            if pending == 0 || rounds >= maximumRounds {
                return RCUQuietBarrierResult(isQuiet: pending == 0, rounds: rounds, pendingCallbacks: pending)
            }
        }
    }

    /// The async form of ``RCUFlavor/barrier(untilQuiet:fileID:line:)-8fmjj``: each round is an
    /// awaited barrier, so no thread of the cooperative pool blocks.
    ///
    /// - Parameters:
    ///   - maximumRounds: The most barriers to run (at least 1).
    ///   - fileID: The call site, for a misuse report (default `#fileID`).
    ///   - line: The call site's line (default `#line`).
    /// - Returns: Whether the callbacks ran out, the barriers run, and what is still pending.
    /// - Throws: `CancellationError` when the task is cancelled before or between rounds.
    public static func barrier(
        untilQuiet maximumRounds: Int, fileID: StaticString = #fileID, line: UInt = #line
    ) async throws(CancellationError) -> RCUQuietBarrierResult {
        precondition(maximumRounds >= 1, "barrier(untilQuiet:): maximumRounds must be at least 1, not \(maximumRounds)")
        guard mayWaitAsync("barrier()", fileID: fileID, line: line) else {
            return RCUQuietBarrierResult(isQuiet: false, rounds: 0, pendingCallbacks: pendingCallbacks)
        }
        var rounds = 0
        while true {
            RCUInlineReclaimBatch.of(kind).handOver()
            try await RCUGracePeriodSequence.of(kind).barrier()
            rounds += 1
            let pending = quietBarrierPending
            if pending == 0 || rounds >= maximumRounds {
                return RCUQuietBarrierResult(isQuiet: pending == 0, rounds: rounds, pendingCallbacks: pending)
            }
        }
    }

    /// Callbacks pending, counting objects gathered for inline reclamation as one more.
    private static var quietBarrierPending: Int {
        pendingCallbacks + (RCUInlineReclaimBatch.of(kind).isEmpty ? 0 : 1)
    }
}
