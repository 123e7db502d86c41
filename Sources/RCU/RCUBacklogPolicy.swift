import Lockdep
import CLockdepThread
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Synchronization

/// How far a flavor's call_rcu backlog may grow before ``RCUFlavor/retire(_:)-(AnyObjectSendable)``
/// callers are throttled, and how they are.
///
/// Retiring costs a caller an allocation and an enqueue; reclaiming costs the one call_rcu
/// worker about as much per callback, after a grace period and a 10 ms pause per batch. Two threads that
/// retire in a loop outrun the worker, and without a bound the backlog, and every object
/// in it, grows until the loop ends (10 million retires peaked at 540 MB). The kernel
/// answers with a high-water mark past which it expedites; this policy is that mark.
///
/// While the backlog is under ``highWaterMark`` a retire costs one extra load of a flag.
/// Once it reaches the mark (checked every 64th callback) retire callers are throttled
/// (``Throttle``) until the backlog drains to ``lowWaterMark``.
///
/// A retire never waits where a wait could never end: inside a read section of any
/// flavor, in a call_rcu callback (or one that a throttled caller runs inline), in a child
/// of an unsafe fork. There the object is
/// queued past the mark, and counted in
/// ``RCUBacklogTelemetry/retiresPastHighWaterWithoutWaiting``. Nor do
/// ``RCUFlavor/deferRetire(_:fileID:line:)`` and the async grace periods' own callbacks wait.
///
/// The policy applies to every path of the library that retires an object, not only to
/// `retire`: ``RCUPointer`` replacements (``RCUPointer/replace(with:)``,
/// ``RCUPointer/exchange(_:)``, ``RCUPointer/compareExchange(expected:desired:)``, a dropped
/// pointer's last object) and ``RCUList`` removals are throttled as a retire is, where it
/// may wait; ``RCUDictionary`` retires its removed values and old tables after releasing its
/// writer lock, so a throttled writer holds no lock. ``RCUHashMap`` and ``LockFreeQueue`` remove inside read sections, where no wait
/// is allowed: there the entry is queued at once, and the map pays the throttle (a wait for
/// the drain) when its read section ends. A throttled replacement or removal under the
/// container's writer lock holds the lock while it waits, which throttles the other writers
/// too; a callback that needs that lock cannot run meanwhile, and the wait ends after
/// ``maximumWaitWithoutProgress``.
///
/// ```swift
/// RCUMemb.backlogPolicy = RCUBacklogPolicy(highWaterMark: 20_000, lowWaterMark: 10_000)
/// RCUMemb.backlogPolicy = .unbounded          // liburcu's behaviour: never throttle
/// ```
public struct RCUBacklogPolicy: Sendable, Hashable {
    /// What a throttled retire does.
    public enum Throttle: Sendable, Hashable {
        /// Queue the callback once the backlog has drained to the low-water mark: the
        /// caller sleeps (a task suspends), and every callback still runs on a call_rcu
        /// worker. The default.
        case waitForDrain
        /// Expedite: throttled callers run grace periods themselves and reclaim objects
        /// inline, in batches, while the worker drains the backlog. A throttled retire adds
        /// its object to the flavor's batch and returns; the retire that fills the batch (512
        /// objects) waits for one grace period and reclaims the whole batch on its own thread
        /// (or in its task): `deinit` or ``RCUReclaimable/reclaim()`` of objects that other
        /// threads retired may run there. A batch left partly filled when the retires stop
        /// goes to call_rcu after a grace period. Faster under a flood, but an object's
        /// reclamation must not need a lock that a retiring thread holds.
        case reclaimInline
    }

    /// The backlog (pending callbacks) at which retire callers start being throttled.
    /// `Int.max` never throttles.
    public var highWaterMark: Int
    /// The backlog at or below which throttling stops.
    public var lowWaterMark: Int
    /// What a throttled retire does.
    public var throttle: Throttle
    /// How long a throttled caller waits while no callback completes before it queues its
    /// callback anyway (counted in ``RCUBacklogTelemetry/abandonedWaits``): the worker is
    /// stuck (a reader that never leaves, a callback that waits on a lock the caller
    /// holds), and a throttle must not turn a stall into a deadlock.
    public var maximumWaitWithoutProgress: Duration

    /// Halfway from the low-water mark to the high-water mark: how far the expedited batch's
    /// sweeper fills the backlog while nothing is throttled.
    var halfwayToHighWaterMark: Int { lowWaterMark + (highWaterMark - lowWaterMark) / 2 }

    /// A policy; `lowWaterMark` is clamped to `0...highWaterMark`.
    public init(
        highWaterMark: Int, lowWaterMark: Int, throttle: Throttle = .waitForDrain,
        maximumWaitWithoutProgress: Duration = .seconds(1)
    ) {
        precondition(highWaterMark > 0, "RCUBacklogPolicy: highWaterMark must be positive, not \(highWaterMark)")
        self.highWaterMark = highWaterMark
        self.lowWaterMark = min(max(lowWaterMark, 0), highWaterMark)
        self.throttle = throttle
        self.maximumWaitWithoutProgress = maximumWaitWithoutProgress
    }

    /// Every flavor's policy until it is set: throttled waits past 100,000 pending callbacks,
    /// until 50,000. With small objects (a callback node and an object of up to 48 bytes) that
    /// holds a storm of retires to about 10-20 MB.
    public static let standard = RCUBacklogPolicy(highWaterMark: 100_000, lowWaterMark: 50_000)

    /// ``standard``'s marks, throttled callers reclaiming inline (``Throttle/reclaimInline``).
    public static let expedited = RCUBacklogPolicy(highWaterMark: 100_000, lowWaterMark: 50_000, throttle: .reclaimInline)

    /// Never throttle: liburcu's own behaviour, the backlog bounded only by memory.
    public static let unbounded = RCUBacklogPolicy(highWaterMark: .max, lowWaterMark: .max)
}

/// A flavor's call_rcu backlog and its throttling, read cheaply (two counter loads and a
/// scan of a small ring of time samples, no lock): ``RCUFlavor/backlog``.
public struct RCUBacklogTelemetry: Sendable, Hashable {
    /// Callbacks queued and not yet run.
    public var pendingCallbacks: Int
    /// How long the oldest pending callback has waited (zero when none is pending). Sampled:
    /// the time since the 64th-or-so callback before it was queued, at most 64 callbacks early.
    public var oldestPendingAge: Duration
    /// Callbacks queued since the process started (retires, replacements, batches of deferred
    /// objects, the package's own grace-period callbacks).
    public var retiredCallbacks: Int
    /// Callbacks run since the process started.
    public var reclaimedCallbacks: Int
    /// Callbacks queued per second, over about the last 4096 of them up to now.
    public var retiresPerSecond: Double
    /// Callbacks run per second, over about the last 4096 of them up to now.
    public var reclaimsPerSecond: Double
    /// Whether retire callers are being throttled now.
    public var isThrottling: Bool
    /// Retires that were throttled (waited, or reclaimed inline).
    public var throttledRetires: Int
    /// The time throttled callers spent waiting or reclaiming, summed over callers.
    public var throttledTime: Duration
    /// Retires past the high-water mark that could not wait (in a read section, a callback,
    /// a child of an unsafe fork) and were queued anyway.
    public var retiresPastHighWaterWithoutWaiting: Int
    /// Objects a throttled caller reclaimed itself (``RCUBacklogPolicy/Throttle/reclaimInline``).
    public var inlineReclamations: Int
    /// Throttled waits that gave up after ``RCUBacklogPolicy/maximumWaitWithoutProgress``.
    public var abandonedWaits: Int
}

/// Per flavor: the policy and the throttling counters (touched only past the high-water mark).
final class RCUBacklogState: Sendable {
    let policy = InternalLockedValue(RCUBacklogPolicy.standard)
    let throttled = Atomic<Int>(0)
    let throttledNanoseconds = Atomic<Int>(0)
    let withoutWaiting = Atomic<Int>(0)
    let inline = Atomic<Int>(0)
    let abandoned = Atomic<Int>(0)

    /// One state per flavor (``RCUPerFlavorObjects``), made inside ``ForkHooks/makeOnce(_:_:)``:
    /// registering the hooks in an unbracketed initializer missed a fork being prepared
    /// meanwhile, whose child then kept a policy lock a parent thread held.
    private static var states: RCUPerFlavorObjects<RCUBacklogState> {
        RCUPerFlavorObjects(slot: CLOCKDEP_ONCE_RCU_BACKLOG_STATES) { made }
    }

    nonisolated(unsafe) private static let made: UnsafeMutableRawPointer = {
        // A thread reading the policy may hold its lock at a fork(): taken before it (so the
        // policy is whole), made new in the child.
        ForkHooks.register(
            prepare: { RCUBacklogState.states.forEach { $0.policy.lock.lock() } },
            parent: { RCUBacklogState.states.forEach { $0.policy.lock.unlock() } },
            child: { RCUBacklogState.reinitializeInForkedChild(RCUBacklogState.states) })
        // Rehearsed on spare states, so the child runs only code the parent has run (see ForkHooks).
        reinitializeInForkedChild(RCUPerFlavorObjects { _ in RCUBacklogState() })
        return RCUPerFlavorObjects { _ in RCUBacklogState() }.raw
    }()

    static func of(_ kind: RCUFlavorKind) -> RCUBacklogState { states[kind].takeUnretainedValue() }

    private static func reinitializeInForkedChild(_ states: RCUPerFlavorObjects<RCUBacklogState>) {
        states.forEach { $0.policy.lock.reinitializeInForkedChild() }
    }

    func recordThrottle(since start: ContinuousClock.Instant) {
        let elapsed = start.duration(to: .now)
        throttled.add(1, ordering: .relaxed)
        throttledNanoseconds.add(Int(elapsed.components.seconds) * 1_000_000_000 + Int(elapsed.components.attoseconds / 1_000_000_000), ordering: .relaxed)
    }
}

extension RCUFlavor {
    /// This flavor's backlog policy: ``RCUBacklogPolicy/standard`` until set. Setting it takes
    /// effect at once (a lowered mark throttles the next retire; a raised one releases waiters
    /// within a millisecond).
    public static var backlogPolicy: RCUBacklogPolicy {
        get { RCUBacklogState.of(kind).policy.withLock { $0 } }
        set {
            RCUBacklogState.of(kind).policy.withLock { policy in
                policy = newValue
                primitiveSetBacklogMarks(high: newValue.highWaterMark, low: newValue.lowWaterMark)
            }
        }
    }

    /// The call_rcu backlog's telemetry: pending callbacks, the oldest one's age, retire and
    /// reclaim rates, and what throttling did.
    ///
    /// - Complexity: O(1): two counter loads, a clock read and at most a 4096-sample scan
    ///   (a few microseconds); no lock.
    public static var backlog: RCUBacklogTelemetry {
        let stats = primitiveBacklogStats()
        let state = RCUBacklogState.of(kind)
        return RCUBacklogTelemetry(
            pendingCallbacks: max(stats.enqueued - stats.completed, 0),
            oldestPendingAge: .nanoseconds(stats.oldestAgeNanoseconds),
            retiredCallbacks: stats.enqueued,
            reclaimedCallbacks: stats.completed,
            retiresPerSecond: stats.retireRate,
            reclaimsPerSecond: stats.reclaimRate,
            isThrottling: primitiveBacklogIsOver,
            throttledRetires: state.throttled.load(ordering: .relaxed),
            throttledTime: .nanoseconds(state.throttledNanoseconds.load(ordering: .relaxed)),
            retiresPastHighWaterWithoutWaiting: state.withoutWaiting.load(ordering: .relaxed),
            inlineReclamations: state.inline.load(ordering: .relaxed),
            abandonedWaits: state.abandoned.load(ordering: .relaxed))
    }

    /// Whether a throttled retire may wait here: not in a read section of any flavor (the
    /// backlog drains only after this thread's section ends), not in a callback (the worker
    /// would wait for itself), not in a child of an unsafe fork (no worker runs). A retire is
    /// legal in all three, so this refusal is silent: the callback is queued past the mark.
    /// Callbacks that a throttled caller runs inline (``RCUBacklogPolicy/Throttle/reclaimInline``)
    /// count as callbacks here: a `deinit` there that retires another object queues it.
    static var mayThrottle: Bool {
        !RCUThreadState.isInAnyReadSection && !RCUThreadState.isInAnyCallback && staleReadersAfterFork == 0
            && !RCUInlineReclaimBatch.isReclaimingOnThisThread
    }

    /// Queues the callback at once, returning `true`, when no throttle applies: the backlog
    /// has drained since the flag was read, or the caller may not wait here (counted).
    private static func queuedWithoutThrottle(
        _ function: RCUCallbackFunction, _ context: UnsafeMutableRawPointer, _ state: RCUBacklogState
    ) -> Bool {
        guard primitiveBacklogRecheck() else {
            primitiveCall(function, context)
            return true
        }
        guard mayThrottle else {
            state.withoutWaiting.add(1, ordering: .relaxed)
            primitiveCall(function, context)
            return true
        }
        return false
    }

    /// Queues a callback through the backlog policy: the path of every library call that
    /// retires an object (`retire`, ``RCUPointer`` replacements, container removals). Under
    /// the high-water mark it is call_rcu after one flag load; past it the caller is
    /// throttled where it may wait, and `call` names it in Lockdep's reports.
    @inlinable @inline(__always)
    static func throttledCall(
        _ function: RCUCallbackFunction, _ context: UnsafeMutableRawPointer, call: StaticString = "retire(_:)"
    ) {
        if _slowPath(primitiveBacklogIsOver) { return retirePastHighWater(function, context, call: call) }
        primitiveCall(function, context)
    }

    /// The slow path of every `retire`: the backlog is past the high-water mark.
    @usableFromInline
    static func retirePastHighWater(
        _ function: RCUCallbackFunction, _ context: UnsafeMutableRawPointer, call: StaticString = "retire(_:)"
    ) {
        let state = RCUBacklogState.of(kind)
        if queuedWithoutThrottle(function, context, state) { return }
        let policy = state.policy.withLock { $0 }
        let start = ContinuousClock.now
        defer { state.recordThrottle(since: start) }
        switch policy.throttle {
        case .waitForDrain:
            lockdepGracePeriodWait(call, #fileID, #line)
            waitAllowed(barrier: true) { waitForDrain(policy, state) }
            primitiveCall(function, context)
        case .reclaimInline:
            // One grace period per batch: only the retire that fills the batch waits.
            let inline = RCUInlineReclaimBatch.of(kind)
            guard let batch = inline.add(function, context) else { return }
            lockdepGracePeriodWait(call, #fileID, #line)
            synchronizeAllowed()
            reclaim(batch, by: inline, state)
        }
    }

    /// Runs a batch's callbacks on the calling thread, after its grace period.
    private static func reclaim(_ batch: RCUInlineReclaimBatch.Taken, by inline: RCUInlineReclaimBatch, _ state: RCUBacklogState) {
        inline.reclaim(batch)
        state.inline.add(batch.count, ordering: .relaxed)
    }

    /// A throttle that a retire inside a read section could not apply, paid once the section
    /// has ended: the containers remove entries inside read sections (rculfhash needs one),
    /// so after such a section their callers wait here for the backlog to drain, as a
    /// ``RCUBacklogPolicy/Throttle/waitForDrain`` retire would (under either policy: the
    /// objects are queued already). One flag load when the backlog is under the mark.
    @inlinable @inline(__always)
    static func throttleAfterReadSection(call: StaticString) {
        if _slowPath(primitiveBacklogIsOver) { waitPastHighWater(call: call) }
    }

    /// The slow path of ``throttleAfterReadSection(call:)``: waits for the drain where the
    /// caller may wait (it may still be inside a read section of its own).
    @usableFromInline
    static func waitPastHighWater(call: StaticString) {
        guard primitiveBacklogRecheck(), mayThrottle else { return }
        let state = RCUBacklogState.of(kind)
        let policy = state.policy.withLock { $0 }
        let start = ContinuousClock.now
        lockdepGracePeriodWait(call, #fileID, #line)
        waitAllowed(barrier: true) { waitForDrain(policy, state) }
        state.recordThrottle(since: start)
    }

    /// Sleeps until the backlog is at or below the low-water mark (the worker lowers the flag
    /// every 64th callback; this rechecks after each sleep), or until no callback has run for
    /// the policy's `maximumWaitWithoutProgress`.
    private static func waitForDrain(_ policy: RCUBacklogPolicy, _ state: RCUBacklogState) {
        var sleepMicroseconds: UInt32 = 50
        var completed = completedCallbacks
        var lastProgress = ContinuousClock.now
        while primitiveBacklogRecheck() {
            usleep(sleepMicroseconds)
            sleepMicroseconds = min(sleepMicroseconds * 2, 1_000)
            let now = ContinuousClock.now
            let done = completedCallbacks
            if done != completed {
                completed = done
                lastProgress = now
            } else if lastProgress.duration(to: now) > policy.maximumWaitWithoutProgress {
                state.abandoned.add(1, ordering: .relaxed)
                return
            }
        }
    }

    /// The async slow path: suspends on the grace-period sequence's driver, a callback queued
    /// behind the backlog, so each wake-up comes after the callbacks queued before it have run.
    @usableFromInline
    static func retirePastHighWaterAsync(
        _ function: RCUCallbackFunction, _ context: UnsafeMutableRawPointer
    ) async throws(CancellationError) {
        let state = RCUBacklogState.of(kind)
        if queuedWithoutThrottle(function, context, state) { return }
        let policy = state.policy.withLock { $0 }
        let start = ContinuousClock.now
        defer { state.recordThrottle(since: start) }
        lockdepAwaitedGracePeriod("throttledRetire(_:)", #fileID, #line)
        let sequence = RCUGracePeriodSequence.of(kind)
        switch policy.throttle {
        case .waitForDrain:
            var completed = completedCallbacks
            var lastProgress = ContinuousClock.now
            while primitiveBacklogRecheck() {
                do {
                    try await sequence.wait(for: sequence.cookie)
                } catch {
                    primitiveCall(function, context)
                    throw error
                }
                let now = ContinuousClock.now
                let done = completedCallbacks
                if done != completed {
                    completed = done
                    lastProgress = now
                } else if lastProgress.duration(to: now) > policy.maximumWaitWithoutProgress {
                    state.abandoned.add(1, ordering: .relaxed)
                    break
                }
            }
            primitiveCall(function, context)
        case .reclaimInline:
            let inline = RCUInlineReclaimBatch.of(kind)
            guard let batch = inline.add(function, context) else { return }
            do {
                try await sequence.wait(for: sequence.cookie)
            } catch {
                inline.queue(taken: batch)
                throw error
            }
            reclaim(batch, by: inline, state)
        }
    }
}

/// Retires for Swift tasks: past the high-water mark they suspend the task instead of
/// blocking its thread.
extension RCUFlavor {
    /// ``retire(_:)-(AnyObjectSendable)`` for a task: under the backlog's high-water mark the
    /// same call (one flag load more than call_rcu); past it, the task suspends until the
    /// backlog has drained (or, with ``RCUBacklogPolicy/Throttle/reclaimInline``, for one
    /// shared grace period, then releases `object` itself) instead of blocking its thread.
    ///
    /// - Throws: `CancellationError` when the task is cancelled while throttled. `object` is
    ///   retired either way (queued without waiting), so the caller has nothing to undo.
    @inlinable
    public static func throttledRetire(_ object: consuming some AnyObject & Sendable) async throws(CancellationError) {
        if _slowPath(primitiveBacklogIsOver) {
            return try await retirePastHighWaterAsync(RCUCallbacks.releaseObject, Unmanaged.passRetained(object as AnyObject).toOpaque())
        }
        primitiveCall(RCUCallbacks.releaseObject, Unmanaged.passRetained(object as AnyObject).toOpaque())
    }

    /// ``retire(reclaiming:)`` for a task, throttled as ``throttledRetire(_:)-(AnyObjectSendable)`` is.
    ///
    /// - Throws: `CancellationError` when the task is cancelled while throttled; `object` is
    ///   retired either way.
    @inlinable
    public static func throttledRetire(reclaiming object: consuming some RCUReclaimable) async throws(CancellationError) {
        if _slowPath(primitiveBacklogIsOver) {
            return try await retirePastHighWaterAsync(RCUCallbacks.reclaimObject, Unmanaged.passRetained(object as AnyObject).toOpaque())
        }
        primitiveCall(RCUCallbacks.reclaimObject, Unmanaged.passRetained(object as AnyObject).toOpaque())
    }

    /// ``retire(_:)-(()->Void)`` for a task, throttled as ``throttledRetire(_:)-(AnyObjectSendable)`` is.
    ///
    /// - Throws: `CancellationError` when the task is cancelled while throttled; `work` is
    ///   queued either way.
    @inlinable
    public static func throttledRetire(_ work: @escaping @Sendable () -> Void) async throws(CancellationError) {
        if _slowPath(primitiveBacklogIsOver) {
            return try await retirePastHighWaterAsync(RCUCallbacks.runClosure, Unmanaged.passRetained(RCUCallbacks.Closure(work)).toOpaque())
        }
        primitiveCall(RCUCallbacks.runClosure, Unmanaged.passRetained(RCUCallbacks.Closure(work)).toOpaque())
    }
}
