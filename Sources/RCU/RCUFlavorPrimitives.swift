public import CURCUMemb
public import CURCUQSBR
public import CURCUBP
public import CURCUMB

/// liburcu's primitives, unchecked, one switch over the flavor's kind each: code
/// specialised for a flavor keeps only its case (the same inline C a C caller gets).
/// Internal on purpose: every public path over them is checked (read sections
/// balanced by closures, waits refused where they could never end).
extension RCUFlavor {
    /// Enters a read section, registering the thread first (qsbr: going online for it) if needed.
    @inlinable @inline(__always)
    static func primitiveReadLock() {
        switch kind {
        case .memb: curcu_memb_read_lock()
        case .qsbr: curcu_qsbr_read_lock()
        case .bulletproof: curcu_bp_read_lock()
        case .memoryBarrier: curcu_mb_read_lock()
        }
    }

    /// The address of the calling thread's liburcu reader state (memb, mb; `nil` for the
    /// flavors whose reader scopes need none, and for memb without sys_membarrier, so
    /// its scopes take liburcu's own paths): what a reader scope records.
    @inlinable
    static var primitiveReaderState: UnsafeMutableRawPointer? {
        switch kind {
        case .memb: curcu_memb_reader_state()
        case .memoryBarrier: curcu_mb_reader_state()
        case .qsbr, .bulletproof: nil
        }
    }

    /// A reader scope's read lock: the unchecked fast path on the scope's thread (`scope`
    /// is its ``primitiveReaderState``), the checked one on any other; qsbr and bp
    /// sections check for themselves. The unlock is ``primitiveReadUnlock(inScope:)``:
    /// either way the section is counted in the running thread's own state.
    @inlinable @inline(__always)
    static func primitiveReadLock(inScope scope: UnsafeMutableRawPointer?) {
        switch kind {
        case .memb: curcu_memb_read_lock_in_scope(scope)
        case .qsbr: curcu_qsbr_read_lock()
        case .bulletproof: curcu_bp_read_lock()
        case .memoryBarrier: curcu_mb_read_lock_in_scope(scope)
        }
    }

    /// Leaves a read section. No balance check.
    @inlinable @inline(__always)
    static func primitiveReadUnlock() {
        switch kind {
        case .memb: curcu_memb_read_unlock()
        case .qsbr: curcu_qsbr_read_unlock()
        case .bulletproof: curcu_bp_read_unlock()
        case .memoryBarrier: curcu_mb_read_unlock()
        }
    }

    /// A reader scope's read unlock, on whatever thread ran the section. memb with a
    /// non-nil `scope` (sys_membarrier on) leaves with compiler barriers only; every
    /// other case is ``primitiveReadUnlock()``.
    @inlinable @inline(__always)
    static func primitiveReadUnlock(inScope scope: UnsafeMutableRawPointer?) {
        switch kind {
        case .memb: curcu_memb_read_unlock_in_scope(scope)
        case .qsbr: curcu_qsbr_read_unlock()
        case .bulletproof: curcu_bp_read_unlock()
        case .memoryBarrier: curcu_mb_read_unlock()
        }
    }

    /// Whether the calling thread is inside a read section (qsbr: the shim's nesting depth, counted in every build).
    @inlinable @inline(__always)
    static var primitiveIsInReadSection: Bool {
        switch kind {
        case .memb: curcu_memb_read_ongoing()
        case .qsbr: curcu_qsbr_read_depth() > 0
        case .bulletproof: curcu_bp_read_ongoing()
        case .memoryBarrier: curcu_mb_read_ongoing()
        }
    }

    /// Whether the calling thread is registered.
    @inlinable
    static var primitiveIsThreadRegistered: Bool {
        switch kind {
        case .memb: curcu_memb_is_registered()
        case .qsbr: curcu_qsbr_is_registered()
        case .bulletproof: curcu_bp_is_registered()
        case .memoryBarrier: curcu_mb_is_registered()
        }
    }

    /// liburcu's `synchronize_rcu`, unchecked.
    @inlinable
    static func primitiveSynchronize() {
        switch kind {
        case .memb: curcu_memb_synchronize()
        case .qsbr: curcu_qsbr_synchronize()
        case .bulletproof: curcu_bp_synchronize()
        case .memoryBarrier: curcu_mb_synchronize()
        }
    }

    /// liburcu's `rcu_barrier`, unchecked, after handing the objects gathered for inline
    /// reclamation (``RCUInlineReclaimBatch``) to call_rcu: a barrier waits for every retire.
    static func primitiveBarrier() {
        RCUInlineReclaimBatch.of(kind).handOver()
        switch kind {
        case .memb: curcu_memb_barrier()
        case .qsbr: curcu_qsbr_barrier()
        case .bulletproof: curcu_bp_barrier()
        case .memoryBarrier: curcu_mb_barrier()
        }
    }

    /// liburcu's `call_rcu`: runs `function(context)` after a grace period on a call_rcu worker.
    @inlinable
    static func primitiveCall(_ function: RCUCallbackFunction, _ context: UnsafeMutableRawPointer) {
        switch kind {
        case .memb: curcu_memb_call(function, context)
        case .qsbr: curcu_qsbr_call(function, context)
        case .bulletproof: curcu_bp_call(function, context)
        case .memoryBarrier: curcu_mb_call(function, context)
        }
    }

    /// The shim's per-thread batches over call_rcu (replacing liburcu's `defer_rcu`); never waits.
    @usableFromInline
    static func primitiveDefer(_ function: RCUCallbackFunction, _ context: UnsafeMutableRawPointer) {
        switch kind {
        case .memb: curcu_memb_defer(function, context)
        case .qsbr: curcu_qsbr_defer(function, context)
        case .bulletproof: curcu_bp_defer(function, context)
        case .memoryBarrier: curcu_mb_defer(function, context)
        }
    }

    /// Hands over every thread's batch, then liburcu's `rcu_barrier`.
    @usableFromInline
    static func primitiveDeferBarrier() {
        switch kind {
        case .memb: curcu_memb_defer_barrier()
        case .qsbr: curcu_qsbr_defer_barrier()
        case .bulletproof: curcu_bp_defer_barrier()
        case .memoryBarrier: curcu_mb_defer_barrier()
        }
    }

    /// Whether the calling thread is running a callback queued through the shims.
    @usableFromInline
    static var primitiveIsInCallback: Bool {
        switch kind {
        case .memb: curcu_memb_in_callback()
        case .qsbr: curcu_qsbr_in_callback()
        case .bulletproof: curcu_bp_in_callback()
        case .memoryBarrier: curcu_mb_in_callback()
        }
    }

    /// Registers the calling thread (idempotent; qsbr: online).
    @usableFromInline
    static func primitiveRegisterThread() {
        switch kind {
        case .memb: curcu_memb_register_thread()
        case .qsbr: curcu_qsbr_register_thread()
        case .bulletproof: curcu_bp_register_thread()
        case .memoryBarrier: curcu_mb_register_thread()
        }
    }

    /// Unregisters the calling thread if this package registered it.
    @usableFromInline
    static func primitiveUnregisterThread() {
        switch kind {
        case .memb: curcu_memb_unregister_thread()
        case .qsbr: curcu_qsbr_unregister_thread()
        case .bulletproof: curcu_bp_unregister_thread()
        case .memoryBarrier: curcu_mb_unregister_thread()
        }
    }

    /// Opens a reader scope: registers; qsbr: brings the thread online, returning whether it did.
    @usableFromInline
    static func primitiveReaderEnter() -> Bool {
        switch kind {
        case .memb: curcu_memb_reader_enter()
        case .qsbr: curcu_qsbr_reader_enter()
        case .bulletproof: curcu_bp_reader_enter()
        case .memoryBarrier: curcu_mb_reader_enter()
        }
    }

    /// Closes a reader scope, undoing what its enter did.
    @usableFromInline
    static func primitiveReaderExit(broughtOnline: Bool) {
        switch kind {
        case .memb: curcu_memb_reader_exit(broughtOnline)
        case .qsbr: curcu_qsbr_reader_exit(broughtOnline)
        case .bulletproof: curcu_bp_reader_exit(broughtOnline)
        case .memoryBarrier: curcu_mb_reader_exit(broughtOnline)
        }
    }

    /// Reader scopes open on the calling thread.
    @usableFromInline
    static var primitiveReaderScopes: Int {
        switch kind {
        case .memb: Int(curcu_memb_reader_scopes())
        case .qsbr: Int(curcu_qsbr_reader_scopes())
        case .bulletproof: Int(curcu_bp_reader_scopes())
        case .memoryBarrier: Int(curcu_mb_reader_scopes())
        }
    }

    /// Threads registered through the shims.
    @usableFromInline
    static var primitiveRegisteredThreadCount: Int {
        switch kind {
        case .memb: curcu_memb_registered_thread_count()
        case .qsbr: curcu_qsbr_registered_thread_count()
        case .bulletproof: curcu_bp_registered_thread_count()
        case .memoryBarrier: curcu_mb_registered_thread_count()
        }
    }

    /// Other registered readers inherited at fork.
    @usableFromInline
    static var primitiveStaleReadersAfterFork: Int {
        switch kind {
        case .memb: curcu_memb_stale_readers_after_fork()
        case .qsbr: curcu_qsbr_stale_readers_after_fork()
        case .bulletproof: curcu_bp_stale_readers_after_fork()
        case .memoryBarrier: curcu_mb_stale_readers_after_fork()
        }
    }

    /// Callbacks queued and not yet run.
    @usableFromInline
    static var primitivePendingCallbacks: Int {
        switch kind {
        case .memb: curcu_memb_pending_callbacks()
        case .qsbr: curcu_qsbr_pending_callbacks()
        case .bulletproof: curcu_bp_pending_callbacks()
        case .memoryBarrier: curcu_mb_pending_callbacks()
        }
    }

    /// Callbacks run since start.
    @usableFromInline
    static var primitiveCompletedCallbacks: Int {
        switch kind {
        case .memb: curcu_memb_completed_callbacks()
        case .qsbr: curcu_qsbr_completed_callbacks()
        case .bulletproof: curcu_bp_completed_callbacks()
        case .memoryBarrier: curcu_mb_completed_callbacks()
        }
    }

    /// Whether the backlog passed the high-water mark and has not yet drained to the low
    /// one: one relaxed load of a C global, the only cost the policy adds to `retire`.
    @inlinable @inline(__always)
    static var primitiveBacklogIsOver: Bool {
        switch kind {
        case .memb: curcu_memb_backlog_is_over()
        case .qsbr: curcu_qsbr_backlog_is_over()
        case .bulletproof: curcu_bp_backlog_is_over()
        case .memoryBarrier: curcu_mb_backlog_is_over()
        }
    }

    /// Lowers the backlog flag if the backlog is at or below the low-water mark; returns the flag.
    static func primitiveBacklogRecheck() -> Bool {
        switch kind {
        case .memb: curcu_memb_backlog_recheck()
        case .qsbr: curcu_qsbr_backlog_recheck()
        case .bulletproof: curcu_bp_backlog_recheck()
        case .memoryBarrier: curcu_mb_backlog_recheck()
        }
    }

    /// Sets the marks the shim compares the backlog with.
    static func primitiveSetBacklogMarks(high: Int, low: Int) {
        switch kind {
        case .memb: curcu_memb_set_backlog_marks(high, low)
        case .qsbr: curcu_qsbr_set_backlog_marks(high, low)
        case .bulletproof: curcu_bp_set_backlog_marks(high, low)
        case .memoryBarrier: curcu_mb_set_backlog_marks(high, low)
        }
    }

    /// Callbacks queued and run since start, the oldest pending one's age in nanoseconds,
    /// and the recent retire and reclaim rates per second.
    static func primitiveBacklogStats() -> (enqueued: Int, completed: Int, oldestAgeNanoseconds: Int, retireRate: Double, reclaimRate: Double) {
        var enqueued = 0, completed = 0, age = 0
        var retireRate = 0.0, reclaimRate = 0.0
        switch kind {
        case .memb: curcu_memb_backlog_stats(&enqueued, &completed, &age, &retireRate, &reclaimRate)
        case .qsbr: curcu_qsbr_backlog_stats(&enqueued, &completed, &age, &retireRate, &reclaimRate)
        case .bulletproof: curcu_bp_backlog_stats(&enqueued, &completed, &age, &retireRate, &reclaimRate)
        case .memoryBarrier: curcu_mb_backlog_stats(&enqueued, &completed, &age, &retireRate, &reclaimRate)
        }
        return (enqueued, completed, age, retireRate, reclaimRate)
    }

    /// Registered threads that hold up the current grace period.
    @usableFromInline
    static func primitiveBlockingReaders() -> [(tid: Int, name: String)] {
        switch kind {
        case .memb: BlockingReaderVisit.collect(curcu_memb_for_each_blocking_reader)
        case .qsbr: BlockingReaderVisit.collect(curcu_qsbr_for_each_blocking_reader)
        case .bulletproof: BlockingReaderVisit.collect(curcu_bp_for_each_blocking_reader)
        case .memoryBarrier: BlockingReaderVisit.collect(curcu_mb_for_each_blocking_reader)
        }
    }

    /// Whether `membarrier` backs the read side.
    @usableFromInline
    static var primitiveHasSysMembarrier: Bool {
        switch kind {
        case .memb: curcu_memb_has_sys_membarrier()
        case .qsbr: false
        case .bulletproof: curcu_bp_has_sys_membarrier()
        case .memoryBarrier: false
        }
    }

    /// `create_call_rcu_data`.
    @usableFromInline
    static func primitiveCreateCallRCUData(flags: UInt, cpu: Int32) -> OpaquePointer? {
        switch kind {
        case .memb: curcu_memb_create_call_rcu_data(flags, cpu)
        case .qsbr: curcu_qsbr_create_call_rcu_data(flags, cpu)
        case .bulletproof: curcu_bp_create_call_rcu_data(flags, cpu)
        case .memoryBarrier: curcu_mb_create_call_rcu_data(flags, cpu)
        }
    }

    /// `call_rcu_data_free`.
    @usableFromInline
    static func primitiveFreeCallRCUData(_ data: OpaquePointer) {
        switch kind {
        case .memb: curcu_memb_call_rcu_data_free(data)
        case .qsbr: curcu_qsbr_call_rcu_data_free(data)
        case .bulletproof: curcu_bp_call_rcu_data_free(data)
        case .memoryBarrier: curcu_mb_call_rcu_data_free(data)
        }
    }

    /// `get_call_rcu_thread`: the worker thread of `data`.
    static func primitiveCallRCUThread(_ data: OpaquePointer) -> pthread_t {
        switch kind {
        case .memb: urcu_memb_get_call_rcu_thread(data)
        case .qsbr: urcu_qsbr_get_call_rcu_thread(data)
        case .bulletproof: urcu_bp_get_call_rcu_thread(data)
        case .memoryBarrier: urcu_mb_get_call_rcu_thread(data)
        }
    }

    /// `set_thread_call_rcu_data`.
    @usableFromInline
    static func primitiveSetThreadCallRCUData(_ data: OpaquePointer?) {
        switch kind {
        case .memb: curcu_memb_set_thread_call_rcu_data(data)
        case .qsbr: curcu_qsbr_set_thread_call_rcu_data(data)
        case .bulletproof: curcu_bp_set_thread_call_rcu_data(data)
        case .memoryBarrier: curcu_mb_set_thread_call_rcu_data(data)
        }
    }

    /// `get_thread_call_rcu_data`.
    @usableFromInline
    static func primitiveThreadCallRCUData() -> OpaquePointer? {
        switch kind {
        case .memb: curcu_memb_get_thread_call_rcu_data()
        case .qsbr: curcu_qsbr_get_thread_call_rcu_data()
        case .bulletproof: curcu_bp_get_thread_call_rcu_data()
        case .memoryBarrier: curcu_mb_get_thread_call_rcu_data()
        }
    }

    /// `create_all_cpu_call_rcu_data`.
    @usableFromInline
    static func primitiveCreatePerCPUCallRCUData(flags: UInt) -> Int32 {
        switch kind {
        case .memb: curcu_memb_create_all_cpu_call_rcu_data(flags)
        case .qsbr: curcu_qsbr_create_all_cpu_call_rcu_data(flags)
        case .bulletproof: curcu_bp_create_all_cpu_call_rcu_data(flags)
        case .memoryBarrier: curcu_mb_create_all_cpu_call_rcu_data(flags)
        }
    }

    /// `free_all_cpu_call_rcu_data`.
    @usableFromInline
    static func primitiveFreePerCPUCallRCUData() {
        switch kind {
        case .memb: curcu_memb_free_all_cpu_call_rcu_data()
        case .qsbr: curcu_qsbr_free_all_cpu_call_rcu_data()
        case .bulletproof: curcu_bp_free_all_cpu_call_rcu_data()
        case .memoryBarrier: curcu_mb_free_all_cpu_call_rcu_data()
        }
    }
}
