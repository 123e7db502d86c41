public import Lockdep
public import CURCUMB

/// liburcu's mb flavor: readers issue full memory barriers (~50 ns a section),
/// so grace periods need no signal or system call. Useful where `membarrier`
/// is unavailable and as the slow baseline in benchmarks.
///
/// Threads are registered on their first read section and unregistered when they exit.
public enum RCUMemoryBarrier: RCUFlavor {
    public static var name: String { "mb" }
    public static let lockdepMap = LockdepMap.rcuRead("rcu_read_lock_mb", key: "swift-rcu.rcu_read_lock_mb", cell: lockdepCell)
    @inlinable public static var lockdepCell: LockdepMapCell { .rcuRead(3) }

    @inlinable @inline(__always) public static func primitiveReadLock() { curcu_mb_read_lock() }
    @inlinable @inline(__always) public static func primitiveReadUnlock() { curcu_mb_read_unlock() }
    @inlinable @inline(__always) public static func primitiveReadLockRegistered() { curcu_mb_read_lock_registered() }
    @inlinable @inline(__always) public static func primitiveReadUnlockRegistered() { curcu_mb_read_unlock() }
    @inlinable public static var primitiveIsInReadSection: Bool { curcu_mb_read_ongoing() }

    @inlinable public static func primitiveSynchronize() { curcu_mb_synchronize() }
    @inlinable public static func primitiveBarrier() { curcu_mb_barrier() }
    @inlinable public static func primitiveCall(_ function: RCUCallbackFunction, _ context: UnsafeMutableRawPointer) {
        curcu_mb_call(function, context)
    }
    @inlinable public static func primitiveDefer(_ function: RCUCallbackFunction, _ context: UnsafeMutableRawPointer) {
        curcu_mb_defer(function, context)
    }
    public static func primitiveDeferBarrier() { curcu_mb_defer_barrier() }
    public static var primitiveIsInCallback: Bool { curcu_mb_in_callback() }

    public static func registerThread() { curcu_mb_register_thread() }
    public static func unregisterThread() { curcu_mb_unregister_thread() }
    @inlinable public static var isThreadRegistered: Bool { curcu_mb_is_registered() }
    public static var registeredThreadCount: Int { curcu_mb_registered_thread_count() }
    public static var staleReadersAfterFork: Int { curcu_mb_stale_readers_after_fork() }

    public static var pendingCallbacks: Int { curcu_mb_pending_callbacks() }
    public static var completedCallbacks: Int { curcu_mb_completed_callbacks() }
    public static func forEachBlockingReader(_ visit: (_ tid: Int, _ name: String) -> Void) {
        BlockingReaderVisit.collect(curcu_mb_for_each_blocking_reader).forEach { visit($0.tid, $0.name) }
    }
    public static var hasSysMembarrier: Bool { false }

    public static func primitiveCreateCallRCUData(flags: UInt, cpu: Int32) -> OpaquePointer? {
        curcu_mb_create_call_rcu_data(flags, cpu)
    }
    public static func primitiveFreeCallRCUData(_ data: OpaquePointer) { curcu_mb_call_rcu_data_free(data) }
    public static func primitiveSetThreadCallRCUData(_ data: OpaquePointer?) { curcu_mb_set_thread_call_rcu_data(data) }
    public static func primitiveThreadCallRCUData() -> OpaquePointer? { curcu_mb_get_thread_call_rcu_data() }
    public static func primitiveDefaultCallRCUData() -> OpaquePointer? { curcu_mb_get_default_call_rcu_data() }
    public static func primitiveCreatePerCPUCallRCUData(flags: UInt) -> Int32 { curcu_mb_create_all_cpu_call_rcu_data(flags) }
    public static func primitiveFreePerCPUCallRCUData() { curcu_mb_free_all_cpu_call_rcu_data() }

    public static func beforeFork() { curcu_mb_before_fork() }
    public static func afterForkParent() { curcu_mb_after_fork_parent() }
    public static func afterForkChild() { curcu_mb_after_fork_child() }
}
