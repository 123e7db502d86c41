/// A class whose instances finish their own reclamation after a grace period: the kernel's
/// object with an embedded `rcu_head` and a free function. Retire one with
/// ``RCUFlavor/retire(reclaiming:)``.
public protocol RCUReclaimable: AnyObject, Sendable {
    /// Runs once, on a call_rcu worker thread (this package's softirq: no sleeping locks),
    /// after every read section that could still see the object has ended.
    func reclaim()
}

/// Deferred reclamation: objects and closures released after a grace period.
extension RCUFlavor {
    /// Releases the caller's reference to `object` after a grace period, on a
    /// call_rcu worker thread (liburcu's `call_rcu`).
    ///
    /// Readers that reached `object` in a read section that began before this
    /// call keep using it safely; its `deinit` runs on the worker once they
    /// have all left. Unpublish the object first (``RCUPointer/replace(with:)``
    /// does both).
    ///
    /// Memory stays bounded: past the flavor's ``backlogPolicy`` high-water mark
    /// (100,000 pending callbacks by default) the caller is throttled, waiting for the
    /// backlog to drain, except where a wait could never end (inside a read section, in
    /// a callback, in a child of an unsafe fork), where the object is queued at once. In
    /// a task, use ``throttledRetire(_:)-(AnyObjectSendable)``, which suspends instead.
    ///
    /// - Complexity: O(1) under the high-water mark: one allocation and a wait-free enqueue.
    @inlinable
    public static func retire(_ object: consuming some AnyObject & Sendable) {
        // The flag first: taking the context before the branch costs a retain and a release.
        if _slowPath(primitiveBacklogIsOver) {
            return retirePastHighWater(RCUCallbacks.releaseObject, Unmanaged.passRetained(object as AnyObject).toOpaque())
        }
        primitiveCall(RCUCallbacks.releaseObject, Unmanaged.passRetained(object as AnyObject).toOpaque())
    }

    /// Calls `object.reclaim()` after a grace period on a call_rcu worker thread, then
    /// releases the caller's reference: the kernel's `call_rcu(&obj->rcu, free_fn)`, whose
    /// callback is a method of the object.
    ///
    /// Cheaper than retiring a closure that calls it (``retire(_:)-(()->Void)``): one
    /// allocation (liburcu's node) instead of two (the closure's box and the node) or three
    /// (with the context of a closure that captures more than the one object). The
    /// `Retire.memb.reclaiming` benchmark checks the count: 1 malloc against 2 for
    /// `Retire.memb.closure`.
    ///
    /// ```swift
    /// final class Session: RCUReclaimable {
    ///     func reclaim() { pool.recycle(buffer) }   // no reader can still be using it
    /// }
    /// RCUMemb.retire(reclaiming: session)
    /// ```
    ///
    /// Throttled past the high-water mark as ``retire(_:)-(AnyObjectSendable)`` is.
    @inlinable
    public static func retire(reclaiming object: consuming some RCUReclaimable) {
        // The flag first: taking the context before the branch costs a retain and a release.
        if _slowPath(primitiveBacklogIsOver) {
            return retirePastHighWater(RCUCallbacks.reclaimObject, Unmanaged.passRetained(object as AnyObject).toOpaque())
        }
        primitiveCall(RCUCallbacks.reclaimObject, Unmanaged.passRetained(object as AnyObject).toOpaque())
    }

    /// Runs `work` after a grace period on a call_rcu worker thread.
    ///
    /// The worker is the "softirq" of this package: `work` must not block on
    /// locks that readers hold, and must not call ``RCUFlavor/barrier(fileID:line:)-3osku``.
    /// With ``RCUQSBR`` it must not block either on a lock a thread holds across
    /// `synchronize()`: qsbr's worker runs callbacks online, so that grace period waits for
    /// the worker, which waits for the lock (the stall detector names the worker).
    /// Throttled past the high-water mark as ``retire(_:)-(AnyObjectSendable)`` is.
    @inlinable
    public static func retire(_ work: @escaping @Sendable () -> Void) {
        // The flag first: taking the context before the branch costs a retain and a release.
        if _slowPath(primitiveBacklogIsOver) {
            return retirePastHighWater(RCUCallbacks.runClosure, Unmanaged.passRetained(RCUCallbacks.Closure(work)).toOpaque())
        }
        primitiveCall(RCUCallbacks.runClosure, Unmanaged.passRetained(RCUCallbacks.Closure(work)).toOpaque())
    }

    /// Releases `object` after a grace period, batched per thread: cheaper than
    /// ``retire(_:)-(AnyObjectSendable)`` in tight update loops (one allocation per 128 objects
    /// instead of one per object).
    ///
    /// The calling thread never waits: a full batch goes to a call_rcu worker as one
    /// callback, a partly filled one about 100 ms after its first object (or when its
    /// thread exits, or at ``deferBarrier(fileID:line:)``). Objects are released on a
    /// call_rcu worker, like ``retire(_:)-(AnyObjectSendable)``. Valid on any thread,
    /// including the main thread and inside a call_rcu callback, and at any time before
    /// the process exits (objects still batched then are not released, as callbacks still
    /// queued are not).
    ///
    /// Unlike liburcu's `defer_rcu`, which this replaces: liburcu asserts at exit that no
    /// thread is still registered for it (aborting any process whose main thread or
    /// call_rcu worker had deferred), and makes a caller with a full queue wait for a grace period.
    ///
    /// It never waits, so, like ``retire(_:)-(AnyObjectSendable)``, it may be called inside a read section.
    ///
    /// - Complexity: O(1), one atomic exchange; every 128th call also queues the batch (call_rcu).
    public static func deferRetire(
        _ object: consuming some AnyObject & Sendable, fileID: StaticString = #fileID, line: UInt = #line
    ) {
        primitiveDefer(RCUCallbacks.releaseObject, Unmanaged.passRetained(object as AnyObject).toOpaque())
    }

    /// Waits until every object queued by ``deferRetire(_:fileID:line:)`` on any thread before the
    /// call has been released (liburcu's `rcu_defer_barrier`): hands over every thread's batch,
    /// then waits for call_rcu's ``RCUFlavor/barrier(fileID:line:)-3osku``.
    ///
    /// Refused where ``RCUFlavor/barrier(fileID:line:)-3osku`` is: inside a read section (of this flavor:
    /// ``RCUMisuse/Kind/deferInReadSection``), from a call_rcu callback
    /// (``RCUMisuse/Kind/barrierInCallback``), in a child of an unsafe fork. A wait
    /// longer than ``RCUStallDetector/threshold`` is reported as a stalled `deferBarrier()`.
    public static func deferBarrier(fileID: StaticString = #fileID, line: UInt = #line) {
        guard mayWaitForGracePeriod(
            "deferBarrier()", inReadSection: .deferInReadSection, inCallback: .barrierInCallback, fileID: fileID, line: line)
        else { return }
        waitAllowed(barrier: true) { primitiveDeferBarrier() }
    }
}

/// The C entry points the call_rcu workers call back into.
@usableFromInline
enum RCUCallbacks {
    @usableFromInline
    final class Closure {
        @usableFromInline let work: @Sendable () -> Void
        @usableFromInline init(_ work: @escaping @Sendable () -> Void) { self.work = work }
    }

    /// Drops the +1 reference handed over at retire time (the object's deinit runs here).
    @usableFromInline
    static let releaseObject: RCUCallbackFunction = { context in
        RCUCallbackContext.run {
            Unmanaged<AnyObject>.fromOpaque(context!).release()
        }
    }

    /// Calls ``RCUReclaimable/reclaim()``, then drops the +1 reference handed over at retire time.
    @usableFromInline
    static let reclaimObject: RCUCallbackFunction = { context in
        RCUCallbackContext.run {
            let object = Unmanaged<AnyObject>.fromOpaque(context!).takeRetainedValue()
            // Only retire(reclaiming:) queues this callback, always with an RCUReclaimable
            // (a cached conformance lookup: cheaper than the closure allocations it replaces).
            (object as! any RCUReclaimable).reclaim()
        }
    }

    @usableFromInline
    static let runClosure: RCUCallbackFunction = { context in
        RCUCallbackContext.run {
            Unmanaged<Closure>.fromOpaque(context!).takeRetainedValue().work()
        }
    }
}
