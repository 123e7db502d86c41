/// Per flavor: the objects that throttled retires under ``RCUBacklogPolicy/Throttle/reclaimInline``
/// gather, so that one grace period reclaims a batch of them instead of one object.
///
/// A throttled retire adds its callback here without waiting. The retire that fills the
/// batch (``capacity`` callbacks) takes it, waits for one grace period and runs every
/// callback in it inline: each of the callers pays a grace period per ``capacity`` objects
/// retired in all, where it paid one per object. A partly filled batch cannot wait for
/// the next retire, which may never come: when a batch gets its first callback a sweeper
/// is queued on call_rcu, and once the backlog has drained to the low-water mark it hands
/// what is still gathered to call_rcu, one callback each (so every object is still
/// counted once in the backlog's telemetry, reclaimed inline or through its own callback).
/// ``RCUFlavor/barrier(file:line:)-6vxax`` hands the batch over first too, so a barrier
/// still waits for every retired object.
final class RCUInlineReclaimBatch: Sendable {
    /// A callback and its context, as `call_rcu` takes them.
    struct Item {
        let function: RCUCallbackFunction
        let context: UnsafeMutableRawPointer
    }

    /// Callbacks per batch: a grace period (a few microseconds to a few milliseconds) shared
    /// by 512 objects costs each of them less than its own reclamation (about 60 ns); the
    /// caller that fills the batch reclaims the 512 in about 30 µs.
    static let capacity = 512

    private struct State {
        var items: [Item] = []
        var sweeperQueued = false
    }

    private let state = Locked(State())
    let kind: RCUFlavorKind

    private init(kind: RCUFlavorKind) { self.kind = kind }

    private static let all = RCUStallDetector.kinds.map { RCUInlineReclaimBatch(kind: $0) }

    static func of(_ kind: RCUFlavorKind) -> RCUInlineReclaimBatch { all[RCUStallDetector.index(of: kind)] }

    /// Adds a throttled retire's callback. Returns the full batch, which the caller reclaims
    /// after a grace period of its own, or `nil`: the callback waits in the batch (a sweeper
    /// is queued when it is the batch's first).
    func add(_ function: RCUCallbackFunction, _ context: UnsafeMutableRawPointer) -> [Item]? {
        let (full, queueSweeper) = state.withLock { s -> ([Item]?, Bool) in
            s.items.append(Item(function: function, context: context))
            if s.items.count >= Self.capacity {
                defer { s.items = [] }
                return (s.items, false)
            }
            guard !s.sweeperQueued else { return (nil, false) }
            s.sweeperQueued = true
            return (nil, true)
        }
        // The batches live as long as the process: the sweeper's context needs no reference.
        if queueSweeper { queue(Self.sweeper, Unmanaged.passUnretained(self).toOpaque()) }
        return full
    }

    /// Hands every gathered callback to call_rcu, one each: a grace period after this, they
    /// run on a call_rcu worker (the sweeper, a barrier).
    func handOver() {
        let items = state.withLock { s in
            // With the items: a callback added after this queues a sweeper of its own.
            s.sweeperQueued = false
            defer { s.items = [] }
            return s.items
        }
        for item in items { queue(item.function, item.context) }
    }

    /// Whether callbacks are gathered now (for ``RCUFlavor/barrier(untilQuiet:file:line:)-8a2fs``).
    var isEmpty: Bool { state.withLock { $0.items.isEmpty } }

    /// Runs a grace period after a batch got its first callback. Until the backlog has
    /// drained to the low-water mark the sweeper only queues itself again: throttled retires
    /// may still fill the batch (and the retire that fills it reclaims it), and callbacks
    /// handed over now would push the backlog past the mark. Once it has drained, the
    /// sweeper hands the rest to call_rcu: those callbacks were added after the sweeper was
    /// queued, so their grace period is another one.
    private static let sweeper: RCUCallbackFunction = { context in
        Unmanaged<RCUInlineReclaimBatch>.fromOpaque(context!).takeUnretainedValue().sweep()
    }

    private func sweep() {
        let drained = hasDrained
        let requeue = state.withLock { s -> Bool in
            // Emptied meanwhile (a full batch was taken, or a barrier handed it over): done.
            guard !s.items.isEmpty else {
                s.sweeperQueued = false
                return false
            }
            return !drained
        }
        if requeue {
            queue(Self.sweeper, Unmanaged.passUnretained(self).toOpaque())
        } else {
            handOver()
        }
    }

    /// Whether the backlog, this sweeper aside, is at or below the low-water mark.
    private var hasDrained: Bool {
        let low = RCUBacklogState.of(kind).policy.withLock { $0.lowWaterMark }
        let pending =
            switch kind {
            case .memb: RCUMemb.primitivePendingCallbacks
            case .qsbr: RCUQSBR.primitivePendingCallbacks
            case .bulletproof: RCUBulletproof.primitivePendingCallbacks
            case .memoryBarrier: RCUMemoryBarrier.primitivePendingCallbacks
            }
        return pending - 1 <= low
    }

    /// call_rcu on this batch's flavor, never throttled (the sweeper runs on a worker).
    private func queue(_ function: RCUCallbackFunction, _ context: UnsafeMutableRawPointer) {
        switch kind {
        case .memb: RCUMemb.primitiveCall(function, context)
        case .qsbr: RCUQSBR.primitiveCall(function, context)
        case .bulletproof: RCUBulletproof.primitiveCall(function, context)
        case .memoryBarrier: RCUMemoryBarrier.primitiveCall(function, context)
        }
    }
}
