public import Lockdep
public import CURCUBP

/// liburcu's bp ("bulletproof") flavor: readers register themselves on their
/// first read lock and liburcu reclaims their slot when the thread exits, so it
/// is safe from threads the program does not own (callbacks from C libraries).
/// Readers cost ~1.5 ns: one more pointer indirection than memb.
public enum RCUBulletproof: RCUFlavor {
    public static var name: String { "bp" }
    public static let lockdepMap = LockdepMap.rcuRead("rcu_read_lock_bp", key: "swift-rcu.rcu_read_lock_bp", cell: lockdepCell)
    @inlinable public static var lockdepCell: LockdepMapCell { .rcuRead(2) }

    @inlinable @inline(__always) public static func primitiveReadLock() { curcu_bp_read_lock() }
    @inlinable @inline(__always) public static func primitiveReadUnlock() { curcu_bp_read_unlock() }
    @inlinable @inline(__always) public static func primitiveReadLockRegistered() { curcu_bp_read_lock_registered() }
    @inlinable @inline(__always) public static func primitiveReadUnlockRegistered() { curcu_bp_read_unlock() }
    @inlinable public static var primitiveIsInReadSection: Bool { curcu_bp_read_ongoing() }

    @inlinable public static func primitiveSynchronize() { curcu_bp_synchronize() }
    @inlinable public static func primitiveBarrier() { curcu_bp_barrier() }
    @inlinable public static func primitiveCall(_ function: RCUCallbackFunction, _ context: UnsafeMutableRawPointer) {
        curcu_bp_call(function, context)
    }
    @inlinable public static func primitiveDefer(_ function: RCUCallbackFunction, _ context: UnsafeMutableRawPointer) {
        curcu_bp_defer(function, context)
    }
    public static func primitiveDeferBarrier() { curcu_bp_defer_barrier() }
    public static var primitiveIsInCallback: Bool { curcu_bp_in_callback() }

    public static func registerThread() { curcu_bp_register_thread() }
    public static func unregisterThread() { curcu_bp_unregister_thread() }
    @inlinable public static var isThreadRegistered: Bool { curcu_bp_is_registered() }
    public static var registeredThreadCount: Int { curcu_bp_registered_thread_count() }
    public static var staleReadersAfterFork: Int { curcu_bp_stale_readers_after_fork() }

    public static var pendingCallbacks: Int { curcu_bp_pending_callbacks() }
    public static var completedCallbacks: Int { curcu_bp_completed_callbacks() }
    public static func forEachBlockingReader(_ visit: (_ tid: Int, _ name: String) -> Void) {
        BlockingReaderVisit.collect(curcu_bp_for_each_blocking_reader).forEach { visit($0.tid, $0.name) }
    }
    public static var hasSysMembarrier: Bool { curcu_bp_has_sys_membarrier() }

    public static func primitiveCreateCallRCUData(flags: UInt, cpu: Int32) -> OpaquePointer? {
        curcu_bp_create_call_rcu_data(flags, cpu)
    }
    public static func primitiveFreeCallRCUData(_ data: OpaquePointer) { curcu_bp_call_rcu_data_free(data) }
    public static func primitiveSetThreadCallRCUData(_ data: OpaquePointer?) { curcu_bp_set_thread_call_rcu_data(data) }
    public static func primitiveThreadCallRCUData() -> OpaquePointer? { curcu_bp_get_thread_call_rcu_data() }
    public static func primitiveDefaultCallRCUData() -> OpaquePointer? { curcu_bp_get_default_call_rcu_data() }
    public static func primitiveCreatePerCPUCallRCUData(flags: UInt) -> Int32 { curcu_bp_create_all_cpu_call_rcu_data(flags) }
    public static func primitiveFreePerCPUCallRCUData() { curcu_bp_free_all_cpu_call_rcu_data() }

    public static func beforeFork() { curcu_bp_before_fork() }
    public static func afterForkParent() { curcu_bp_after_fork_parent() }
    public static func afterForkChild() { curcu_bp_after_fork_child() }
}
