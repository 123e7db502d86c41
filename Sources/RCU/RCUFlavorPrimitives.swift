import CURCUCommon

/// liburcu's primitives, unchecked, written once over a flavor's description and
/// inline requirements: code specialised for a flavor calls its own C (the inline
/// fast path; a constant table for the slow path). Internal on purpose: every public
/// path over them is checked (read sections balanced by closures, waits refused
/// where they could never end).
extension RCUFlavor {
    /// A reader scope's read lock (see `_scopeReadLock(_:)`).
    @inlinable @inline(__always)
    static func primitiveReadLock(inScope scope: UnsafeMutableRawPointer?) -> Bool {
        _scopeReadLock(scope)
    }

    /// A reader scope's read unlock, on whatever thread ran the section.
    @inlinable @inline(__always)
    static func primitiveReadUnlock(inScope scope: UnsafeMutableRawPointer?, broughtOnline: Bool) {
        _scopeReadUnlock(scope, broughtOnline: broughtOnline)
    }

    /// The address of the calling thread's liburcu reader state that a reader scope records.
    @inlinable
    static var primitiveReaderState: UnsafeMutableRawPointer? { _readerState }

    /// Whether the calling thread is inside a read section.
    @inlinable @inline(__always)
    static var primitiveIsInReadSection: Bool { _isInReadSection }

    /// Whether the calling thread is registered.
    @inlinable
    static var primitiveIsThreadRegistered: Bool { _isThreadRegistered }

    /// ``primitiveIsInReadSection`` for a misuse check, which must not change the thread:
    /// liburcu's bp check registers the thread it asks about (bp's grace periods then scan
    /// it), and an unregistered thread is in no bp section.
    @inline(__always)
    static var primitiveIsInReadSectionWithoutRegistering: Bool {
        (Self.self != RCUBulletproof.self || primitiveIsThreadRegistered) && primitiveIsInReadSection
    }

    /// liburcu's `synchronize_rcu`, unchecked.
    static func primitiveSynchronize() { operations.pointee.synchronize() }

    /// liburcu's `rcu_barrier`, unchecked, after handing the objects gathered for inline
    /// reclamation (``RCUInlineReclaimBatch``) to call_rcu: a barrier waits for every retire.
    static func primitiveBarrier() { flavorDescription.barrier() }

    /// liburcu's `call_rcu`: runs `function(context)` after a grace period on a call_rcu worker.
    @usableFromInline
    static func primitiveCall(_ function: RCUCallbackFunction, _ context: UnsafeMutableRawPointer) {
        flavorDescription.call(function, context)
    }

    /// The shim's per-thread batches over call_rcu (replacing liburcu's `defer_rcu`); never waits.
    @usableFromInline
    static func primitiveDefer(_ function: RCUCallbackFunction, _ context: UnsafeMutableRawPointer) {
        operations.pointee.defer(function, context)
    }

    /// Hands over every thread's batch, then liburcu's `rcu_barrier`.
    @usableFromInline
    static func primitiveDeferBarrier() { operations.pointee.defer_barrier() }

    /// Whether the calling thread is running a callback queued through the shims.
    @usableFromInline
    static var primitiveIsInCallback: Bool { operations.pointee.in_callback() }

    /// Registers the calling thread (idempotent; qsbr: online).
    @usableFromInline
    static func primitiveRegisterThread() { operations.pointee.register_thread() }

    /// Unregisters the calling thread if this package registered it.
    @usableFromInline
    static func primitiveUnregisterThread() { operations.pointee.unregister_thread() }

    /// Opens a reader scope: registers; qsbr: brings the thread online, returning whether it did.
    @usableFromInline
    static func primitiveReaderEnter() -> Bool { operations.pointee.reader_enter() }

    /// Closes a reader scope, undoing what its enter did.
    @usableFromInline
    static func primitiveReaderExit(broughtOnline: Bool) { operations.pointee.reader_exit(broughtOnline) }

    /// Reader scopes open on the calling thread.
    @usableFromInline
    static var primitiveReaderScopes: Int { Int(operations.pointee.reader_scopes()) }

    /// Threads registered through the shims.
    @usableFromInline
    static var primitiveRegisteredThreadCount: Int { operations.pointee.registered_thread_count() }

    /// Other registered readers inherited at fork.
    @usableFromInline
    static var primitiveStaleReadersAfterFork: Int { operations.pointee.stale_readers_after_fork() }

    /// Callbacks queued and not yet run.
    @usableFromInline
    static var primitivePendingCallbacks: Int { operations.pointee.pending_callbacks() }

    /// Callbacks run since start.
    @usableFromInline
    static var primitiveCompletedCallbacks: Int { operations.pointee.completed_callbacks() }

    /// See `_backlogIsOver`.
    @inlinable @inline(__always)
    static var primitiveBacklogIsOver: Bool { _backlogIsOver }

    /// Lowers the backlog flag if the backlog is at or below the low-water mark; returns the flag.
    static func primitiveBacklogRecheck() -> Bool { operations.pointee.backlog_recheck() }

    /// Sets the marks the shim compares the backlog with.
    static func primitiveSetBacklogMarks(high: Int, low: Int) { operations.pointee.set_backlog_marks(high, low) }

    /// Callbacks queued and run since start, the oldest pending one's age in nanoseconds,
    /// and the recent retire and reclaim rates per second.
    static func primitiveBacklogStats() -> (enqueued: Int, completed: Int, oldestAgeNanoseconds: Int, retireRate: Double, reclaimRate: Double) {
        var enqueued = 0, completed = 0, age = 0
        var retireRate = 0.0, reclaimRate = 0.0
        operations.pointee.backlog_stats(&enqueued, &completed, &age, &retireRate, &reclaimRate)
        return (enqueued, completed, age, retireRate, reclaimRate)
    }

    /// Registered threads that hold up the current grace period.
    @usableFromInline
    static func primitiveBlockingReaders() -> [(tid: Int, name: String)] { flavorDescription.blockingReaders() }

    /// Whether `membarrier` backs the read side.
    @usableFromInline
    static var primitiveHasSysMembarrier: Bool { operations.pointee.has_sys_membarrier() }

    /// `create_call_rcu_data`.
    @usableFromInline
    static func primitiveCreateCallRCUData(flags: UInt, cpu: Int32) -> OpaquePointer? {
        operations.pointee.create_call_rcu_data(flags, cpu)
    }

    /// `call_rcu_data_free`.
    @usableFromInline
    static func primitiveFreeCallRCUData(_ data: OpaquePointer) { operations.pointee.call_rcu_data_free(data) }

    /// `get_call_rcu_thread`: the worker thread of `data`.
    static func primitiveCallRCUThread(_ data: OpaquePointer) -> pthread_t { operations.pointee.get_call_rcu_thread(data) }

    /// `set_thread_call_rcu_data`.
    @usableFromInline
    static func primitiveSetThreadCallRCUData(_ data: OpaquePointer?) { operations.pointee.set_thread_call_rcu_data(data) }

    /// `get_thread_call_rcu_data`.
    @usableFromInline
    static func primitiveThreadCallRCUData() -> OpaquePointer? { operations.pointee.get_thread_call_rcu_data() }

    /// `create_all_cpu_call_rcu_data`.
    @usableFromInline
    static func primitiveCreatePerCPUCallRCUData(flags: UInt) -> Int32 { operations.pointee.create_all_cpu_call_rcu_data(flags) }

    /// `free_all_cpu_call_rcu_data`.
    @usableFromInline
    static func primitiveFreePerCPUCallRCUData() { operations.pointee.free_all_cpu_call_rcu_data() }
}

/// The slow path by description, for code that holds a flavor's description or kind
/// rather than its type (the stall detector, the grace-period sequences, inline reclaim).
extension RCUFlavorDescription {
    /// liburcu's `call_rcu` of this flavor.
    @usableFromInline
    package func call(_ function: RCUCallbackFunction, _ context: UnsafeMutableRawPointer) {
        operations.pointee.call(function, context)
    }

    /// liburcu's `rcu_barrier` of this flavor, after handing over its inline-reclaim batch.
    package func barrier() {
        RCUInlineReclaimBatch.of(kind).handOverForBarrier()
        operations.pointee.barrier()
    }

    /// Callbacks queued and not yet run.
    package var pendingCallbacks: Int { operations.pointee.pending_callbacks() }

    /// Lowers the backlog flag if the backlog is at or below the low-water mark; returns the flag.
    package func backlogRecheck() -> Bool { operations.pointee.backlog_recheck() }
}

extension RCUFlavor {
    /// A qsbr reader's quiescent state (``RCUQSBR/quiescentState(fileID:line:)``); nothing for
    /// the other flavors, whose readers need none. For loops generic over the flavor.
    @inlinable
    package static func quiescentStateIfQSBR(fileID: StaticString = #fileID, line: UInt = #line) {
        if flavorDescription.isQSBR { RCUQSBR.quiescentState(fileID: fileID, line: line) }
    }

    /// Runs `body` where grace periods need not wait for this thread: for a qsbr thread
    /// that is online, offline (``RCUQSBR/offline(fileID:line:_:)``); as is otherwise.
    package static func offlineIfQSBR<Result, Failure: Error>(
        fileID: StaticString = #fileID, line: UInt = #line, _ body: () throws(Failure) -> Result
    ) throws(Failure) -> Result {
        guard flavorDescription.isQSBR else { return try body() }
        return try RCUQSBR.offline(fileID: fileID, line: line, body)
    }
}
