public import Lockdep
public import CURCUMemb

/// liburcu's memb flavor, the default: readers cost about a nanosecond
/// (a counter store; the writer pays with the `membarrier` system call).
///
/// Threads are registered on their first read section and unregistered when
/// they exit; nothing is required of readers.
public enum RCUMemb: RCUFlavor {
    public static var name: String { "memb" }
    public static let lockdepMap = LockdepMap.rcuRead("rcu_read_lock", key: "swift-rcu.rcu_read_lock", cell: lockdepCell)
    @inlinable public static var lockdepCell: LockdepMapCell { .rcuRead(0) }

    @inlinable @inline(__always) public static func primitiveReadLock() { curcu_memb_read_lock() }
    @inlinable @inline(__always) public static func primitiveReadUnlock() { curcu_memb_read_unlock() }
    @inlinable @inline(__always) public static func primitiveReadLockRegistered() { curcu_memb_read_lock_registered() }
    @inlinable @inline(__always) public static func primitiveReadUnlockRegistered() { curcu_memb_read_unlock() }
    @inlinable public static var primitiveIsInReadSection: Bool { curcu_memb_read_ongoing() }

    @inlinable public static func primitiveSynchronize() { curcu_memb_synchronize() }
    @inlinable public static func primitiveBarrier() { curcu_memb_barrier() }
    @inlinable public static func primitiveCall(_ function: RCUCallbackFunction, _ context: UnsafeMutableRawPointer) {
        curcu_memb_call(function, context)
    }
    @inlinable public static func primitiveDefer(_ function: RCUCallbackFunction, _ context: UnsafeMutableRawPointer) {
        curcu_memb_defer(function, context)
    }
    public static func primitiveDeferBarrier() { curcu_memb_defer_barrier() }
    public static var primitiveIsInCallback: Bool { curcu_memb_in_callback() }

    public static func registerThread() { curcu_memb_register_thread() }
    public static func unregisterThread() { curcu_memb_unregister_thread() }
    @inlinable public static var isThreadRegistered: Bool { curcu_memb_is_registered() }
    public static var registeredThreadCount: Int { curcu_memb_registered_thread_count() }
    public static var staleReadersAfterFork: Int { curcu_memb_stale_readers_after_fork() }

    public static var pendingCallbacks: Int { curcu_memb_pending_callbacks() }
    public static var completedCallbacks: Int { curcu_memb_completed_callbacks() }
    public static func forEachBlockingReader(_ visit: (_ tid: Int, _ name: String) -> Void) {
        BlockingReaderVisit.collect(curcu_memb_for_each_blocking_reader).forEach { visit($0.tid, $0.name) }
    }
    public static var hasSysMembarrier: Bool { curcu_memb_has_sys_membarrier() }

    public static func primitiveCreateCallRCUData(flags: UInt, cpu: Int32) -> OpaquePointer? {
        curcu_memb_create_call_rcu_data(flags, cpu)
    }
    public static func primitiveFreeCallRCUData(_ data: OpaquePointer) { curcu_memb_call_rcu_data_free(data) }
    public static func primitiveSetThreadCallRCUData(_ data: OpaquePointer?) { curcu_memb_set_thread_call_rcu_data(data) }
    public static func primitiveThreadCallRCUData() -> OpaquePointer? { curcu_memb_get_thread_call_rcu_data() }
    public static func primitiveDefaultCallRCUData() -> OpaquePointer? { curcu_memb_get_default_call_rcu_data() }
    public static func primitiveCreatePerCPUCallRCUData(flags: UInt) -> Int32 { curcu_memb_create_all_cpu_call_rcu_data(flags) }
    public static func primitiveFreePerCPUCallRCUData() { curcu_memb_free_all_cpu_call_rcu_data() }

    public static func beforeFork() { curcu_memb_before_fork() }
    public static func afterForkParent() { curcu_memb_after_fork_parent() }
    public static func afterForkChild() { curcu_memb_after_fork_child() }
}
