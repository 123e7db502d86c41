import Lockdep
import CLockdepThread
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Synchronization

/// Per flavor: the objects that throttled retires under ``RCUBacklogPolicy/Throttle/reclaimInline``
/// gather, so that one grace period reclaims a batch of them instead of one object.
///
/// A throttled retire adds its callback here without waiting. The retire that fills the
/// batch (``capacity`` callbacks) takes it, waits for one grace period and runs every
/// callback in it inline: each of the callers pays a grace period per ``capacity`` objects
/// retired in all, where it paid one per object. A partly filled batch cannot wait for
/// the next retire, which may never come: when a batch gets its first callback a sweeper
/// is queued on call_rcu, and once the backlog has drained to the low-water mark, or
/// retires are no longer throttled, it hands what is still gathered to call_rcu (while
/// not throttled, as much as keeps the backlog under halfway to the high-water mark), one
/// callback each (so every object is still
/// counted once in the backlog's telemetry, reclaimed inline or through its own callback).
/// ``RCUFlavor/barrier(fileID:line:)-3osku`` hands the batch over first too, so a barrier
/// still waits for every retired object.
final class RCUInlineReclaimBatch: Sendable {
    /// A callback and its context, as `call_rcu` takes them.
    struct Item {
        let function: RCUCallbackFunction
        let context: UnsafeMutableRawPointer
    }

    /// Callbacks per batch: a grace period (a few microseconds to a few milliseconds) shared
    /// by 512 objects costs each of them less than its own reclamation; the caller that
    /// fills the batch reclaims all 512.
    static let capacity = 512

    /// Callbacks taken out of the batch together, and the barrier generation they count in.
    struct Taken {
        let items: [Item]
        let generation: Int
        var count: Int { items.count }
    }

    private struct State {
        var items: [Item] = []
        var sweeperQueued = false
        /// Which of the two in-flight counts a take adds to; a barrier flips it as it takes
        /// the batch, then waits for the other count only (what was taken before it).
        var generation = 0
    }

    private let state = InternalLockedValue(State())
    /// The batch's lock (for tests that hold it across a fork).
    var lock: InternalLock { state.lock }
    let kind: RCUFlavorKind
    /// Callbacks taken out of the batch (under its lock) and not yet run or queued, per
    /// generation: a full batch that the retire filling it reclaims inline, what a sweeper
    /// or a barrier hands over. They were retired before a barrier that finds the batch
    /// without them, so the barrier waits for them (liburcu's waits for a callback a worker
    /// runs); for them only, not for batches taken after it started, which a retire storm
    /// would never stop taking.
    private let inFlightEven = Atomic<Int>(0), inFlightOdd = Atomic<Int>(0)
    /// Barriers waiting for this batch: while one does, a sweeper queues what it took
    /// instead of putting it back in the batch, where that barrier would not see it.
    private let barriersWaiting = Atomic<Int>(0)
    /// One barrier at a time flips the generation and waits for the old one.
    private let barrierTurn = InternalLockedValue(0)

    private func countInFlight(_ count: Int, generation: Int) {
        if generation == 0 {
            inFlightEven.add(count, ordering: .sequentiallyConsistent)
        } else {
            inFlightOdd.add(count, ordering: .sequentiallyConsistent)
        }
    }

    private func inFlight(generation: Int) -> Int {
        generation == 0 ? inFlightEven.load(ordering: .sequentiallyConsistent) : inFlightOdd.load(ordering: .sequentiallyConsistent)
    }
    /// The process that queued the latest sweeper. A sweeper pending at a `fork()` runs in
    /// the child on the worker that liburcu's child hook starts, which may be before this
    /// type's own child handler has reset the lock a parent thread held: such a sweeper
    /// returns without touching the lock (the child dropped the batch anyway).
    private let sweeperProcess = Atomic<Int32>(0)

    private init(kind: RCUFlavorKind) { self.kind = kind }

    /// This batch's flavor.
    private var flavor: RCUFlavorDescription { kind.flavorType.flavorDescription }

    /// One batch per flavor (``RCUPerFlavorObjects``), made inside ``ForkHooks/makeOnce(_:_:)``:
    /// registering the child hook in an unbracketed initializer missed a fork being prepared
    /// meanwhile, whose child then kept a batch lock a parent thread held.
    private static var batches: RCUPerFlavorObjects<RCUInlineReclaimBatch> {
        RCUPerFlavorObjects(slot: CLOCKDEP_ONCE_RCU_INLINE_RECLAIM_BATCHES) { made }
    }

    nonisolated(unsafe) private static let made: UnsafeMutableRawPointer = {
        ForkHooks.register(prepare: nil, parent: nil, child: { RCUInlineReclaimBatch.unlockInForkedChild(RCUInlineReclaimBatch.batches) })
        // Rehearsed on spare batches, so the child runs only code the parent has run (see ForkHooks).
        unlockInForkedChild(RCUPerFlavorObjects(making: RCUInlineReclaimBatch.init(kind:)))
        return RCUPerFlavorObjects(making: RCUInlineReclaimBatch.init(kind:)).raw
    }()

    /// A thread adding to a batch (or a sweeper) may hold its lock at a `fork()`: the
    /// child's barrier and sweeper would wait for that thread, which the child lacks. Its
    /// change to the batch may be half made (an element counted but not yet written, which
    /// the child would queue as a callback and crash on), so the child drops what was
    /// gathered: those objects are leaked in the child, never reclaimed early; the parent
    /// reclaims its own. A sweeper pending in the child finds the batch empty and stops.
    /// Callbacks parent threads had taken out of the batch are dropped with it.
    private static func unlockInForkedChild(_ batches: RCUPerFlavorObjects<RCUInlineReclaimBatch>) {
        batches.forEach { batch in
            batch.state.lock.reinitializeInForkedChild()
            // Overwritten, not assigned: releasing the old array, which a parent thread may
            // have been appending to, crashed a child under ASan. It is leaked instead.
            batch.state.withLock { withUnsafeMutablePointer(to: &$0) { $0.initialize(to: State()) } }
            // What parent threads had taken out is theirs too: a barrier here waits for none of it.
            batch.barrierTurn.lock.reinitializeInForkedChild()
            batch.inFlightEven.store(0, ordering: .sequentiallyConsistent)
            batch.inFlightOdd.store(0, ordering: .sequentiallyConsistent)
            batch.barriersWaiting.store(0, ordering: .sequentiallyConsistent)
        }
    }

    static func of(_ kind: RCUFlavorKind) -> RCUInlineReclaimBatch { batches[kind].takeUnretainedValue() }

    /// Adds a throttled retire's callback. Returns the full batch, which the caller reclaims
    /// after a grace period of its own, or `nil`: the callback waits in the batch (a sweeper
    /// is queued when it is the batch's first).
    func add(_ function: RCUCallbackFunction, _ context: UnsafeMutableRawPointer) -> Taken? {
        let (full, queueSweeper) = state.withLock { s -> (Taken?, Bool) in
            s.items.append(Item(function: function, context: context))
            if let full = Self.takeFullBatch(from: &s.items) {
                countInFlight(full.count, generation: s.generation)
                return (Taken(items: full, generation: s.generation), false)
            }
            guard !s.sweeperQueued else { return (nil, false) }
            s.sweeperQueued = true
            return (nil, true)
        }
        // The batches live as long as the process: the sweeper's context needs no reference.
        if queueSweeper {
            sweeperProcess.store(getpid(), ordering: .relaxed)
            queue(Self.sweeper, Unmanaged.passUnretained(self).toOpaque())
        }
        return full
    }

    /// The oldest ``capacity`` callbacks once at least that many are gathered. A sweeper that
    /// stopped at the high-water mark puts its rest back in front, so more may be gathered:
    /// those stay for the next batch or sweep, and every batch reclaimed inline is a full one.
    static func takeFullBatch(from items: inout [Item]) -> [Item]? {
        guard items.count >= capacity else { return nil }
        defer { items.removeFirst(capacity) }
        return Array(items.prefix(capacity))
    }

    /// Threads running a batch's callbacks inline (a non-nil value): there, as on a call_rcu
    /// worker, a retire must not wait. A `deinit` that retires another object (one that
    /// owns an ``RCUPointer``) would otherwise fill the next batch and wait for a grace
    /// period inside the callback context (Lockdep: sleeping in softirq). Read only past
    /// the high-water mark, so a thread-specific key costs nothing on the fast path.
    private static let reclaimingKey: pthread_key_t = {
        var key = pthread_key_t()
        let status = pthread_key_create(&key, nil)
        precondition(status == 0, "swift-rcu: pthread_key_create failed (\(status)) for inline reclamation")
        return key
    }()

    /// Whether the calling thread is running callbacks of a batch it reclaims inline.
    static var isReclaimingOnThisThread: Bool { pthread_getspecific(reclaimingKey) != nil }

    /// Runs the callbacks of a full batch that ``add(_:_:)`` returned on the calling thread,
    /// marked as reclaiming inline; then barriers stop waiting for them.
    func reclaim(_ taken: Taken) {
        defer { countInFlight(-taken.count, generation: taken.generation) }
        let outer = pthread_getspecific(Self.reclaimingKey)
        pthread_setspecific(Self.reclaimingKey, UnsafeRawPointer(bitPattern: 1))
        defer { pthread_setspecific(Self.reclaimingKey, outer) }
        for item in taken.items { item.function(item.context) }
    }

    /// Hands every gathered callback to call_rcu, one each: a grace period after this, they
    /// run on a call_rcu worker (the sweeper, a barrier).
    func handOver() { _ = handOver(flippingGeneration: false) }

    /// Hands every gathered callback over; returns the generation that was current when
    /// it took them (a barrier flips it in the same lock, and waits for that one).
    private func handOver(flippingGeneration: Bool) -> Int {
        let (taken, current) = state.withLock { s in
            // With the items: a callback added after this queues a sweeper of its own.
            s.sweeperQueued = false
            defer { s.items = [] }
            let current = s.generation
            if flippingGeneration { s.generation ^= 1 }
            countInFlight(s.items.count, generation: s.generation)
            return (Taken(items: s.items, generation: s.generation), current)
        }
        queue(taken: taken)
        return current
    }

    /// Queues on call_rcu the callbacks of a full batch that ``add(_:_:)`` returned and
    /// that will not be reclaimed inline (its retire was cancelled); then barriers stop
    /// waiting for them.
    func queue(taken: Taken) {
        for item in taken.items { queue(item.function, item.context) }
        countInFlight(-taken.count, generation: taken.generation)
    }

    /// A barrier's first step: hands the batch over and waits until every callback taken
    /// out of it earlier (a batch another thread reclaims inline, what a sweeper hands over)
    /// has run or is queued, so that liburcu's barrier then waits for all of them. On a
    /// thread reclaiming a batch inline (a `deinit` there calls `barrier()`) it does not
    /// wait: that batch is its own caller's.
    func handOverForBarrier() {
        guard !Self.isReclaimingOnThisThread else { return handOver() }
        barrierTurn.withLock { _ in
            barriersWaiting.add(1, ordering: .sequentiallyConsistent)
            defer { barriersWaiting.subtract(1, ordering: .sequentiallyConsistent) }
            let before = handOver(flippingGeneration: true)
            while inFlight(generation: before) > 0 { usleep(100) }
        }
    }

    /// Whether callbacks are gathered now (for ``RCUFlavor/barrier(untilQuiet:fileID:line:)-8fmjj``).
    var isEmpty: Bool { state.withLock { $0.items.isEmpty } }

    /// Runs a grace period after a batch got its first callback. While retires are
    /// throttled, and until the backlog has drained to the low-water mark, the sweeper only
    /// queues itself again: throttled retires may still fill the batch (and the retire that
    /// fills it reclaims it), and callbacks handed over now would push the backlog past the
    /// mark. Once it has drained, the sweeper hands the rest to call_rcu; once nothing is
    /// throttled (the policy changed, or the backlog dipped to the mark between two sweeps)
    /// it hands over as many as keep the backlog under halfway from the low-water mark to
    /// the high-water mark: no throttled retire would
    /// fill the batch any more, and other retires may keep the backlog above the low-water
    /// mark for as long as they run. Those callbacks were added after the sweeper was
    /// queued, so their grace period is another one.
    private static let sweeper: RCUCallbackFunction = { context in
        Unmanaged<RCUInlineReclaimBatch>.fromOpaque(context!).takeUnretainedValue().sweep()
    }

    private func sweep() {
        guard sweeperProcess.load(ordering: .relaxed) == getpid() else { return }
        let backlog = self.backlog
        var generation = 0
        let (handed, requeue) = state.withLock { s -> ([Item], Bool) in
            // Emptied meanwhile (a full batch was taken, or a barrier handed it over): done.
            guard !s.items.isEmpty else {
                s.sweeperQueued = false
                return ([], false)
            }
            let room =
                if backlog.pending <= backlog.policy.lowWaterMark {
                    s.items.count
                } else if backlog.isThrottling {
                    0
                } else {
                    // As many as keep the backlog under halfway to the high-water mark (the
                    // oldest first): retires that are not throttled go on meanwhile, and the
                    // flag is raised only at the mark, 64 callbacks a thread late.
                    max(0, min(s.items.count, backlog.policy.halfwayToHighWaterMark - backlog.pending))
                }
            let handed = Array(s.items.prefix(room))
            s.items.removeFirst(room)
            generation = s.generation
            countInFlight(handed.count, generation: generation)
            if s.items.isEmpty { s.sweeperQueued = false }
            return (handed, !s.items.isEmpty)
        }
        // The backlog was read before the lock: a sweeper preempted since then would hand
        // over a whole batch on top of what the writers queued meanwhile. Stop at the
        // high-water mark and keep the rest for the next sweep.
        var next = handed.startIndex
        while next < handed.endIndex {
            if next % 32 == 0, next > 0, flavor.pendingCallbacks - 1 >= backlog.policy.highWaterMark { break }
            queue(handed[next].function, handed[next].context)
            next += 1
        }
        var sweepAgain = requeue
        if next < handed.endIndex {
            // A barrier waiting now handed the batch over before these could go back: queue them.
            let putBack = state.withLock { s -> Bool in
                guard barriersWaiting.load(ordering: .sequentiallyConsistent) == 0 else { return false }
                s.items.insert(contentsOf: handed[next...], at: 0)
                defer { s.sweeperQueued = true }
                sweepAgain = !s.sweeperQueued || requeue
                return true
            }
            if !putBack { for item in handed[next...] { queue(item.function, item.context) } }
        }
        countInFlight(-handed.count, generation: generation)
        if sweepAgain { queue(Self.sweeper, Unmanaged.passUnretained(self).toOpaque()) }
    }

    /// The backlog as the sweeper sees it: callbacks pending (this sweeper aside), whether
    /// retires are throttled now (the flag, lowered here if the backlog has drained), the policy.
    private var backlog: (pending: Int, isThrottling: Bool, policy: RCUBacklogPolicy) {
        let policy = RCUBacklogState.of(kind).policy.withLock { $0 }
        let (pending, over) =
            (flavor.pendingCallbacks, flavor.backlogRecheck())
        return (pending - 1, over, policy)
    }

    /// call_rcu on this batch's flavor, never throttled (the sweeper runs on a worker).
    private func queue(_ function: RCUCallbackFunction, _ context: UnsafeMutableRawPointer) {
        flavor.call(function, context)
    }
}
