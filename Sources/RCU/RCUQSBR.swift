public import Lockdep
public import CURCUQSBR

/// liburcu's qsbr flavor (quiescent-state-based reclamation): read sections
/// cost nothing at all, and in exchange every registered reader must announce
/// quiescent states (``RCUQSBR/quiescentState(file:line:)``) or go offline while it blocks.
///
/// Generic read sections (``RCUFlavor/read(file:line:_:)``) are safe by default: a
/// thread that is not online is brought online for the outermost section and
/// taken offline after it, so it can never stall a grace period (its sections
/// then cost about what ``RCUMemoryBarrier``'s do). Threads that read in a hot
/// loop hold an ``RCUQSBR/Reader`` instead: registered and online, read
/// sections that compile to nothing, and the duty to call
/// ``RCUReader/quiescentState(file:line:)``. A reader that forgets stalls
/// every grace period: ``RCUStallDetector`` names it instead of letting the
/// call_rcu backlog grow silently.
public enum RCUQSBR: RCUFlavor {
    public static var name: String { "qsbr" }
    public static let lockdepMap = LockdepMap.rcuRead("rcu_read_lock_qsbr", key: "swift-rcu.rcu_read_lock_qsbr", cell: lockdepCell)
    @inlinable public static var lockdepCell: LockdepMapCell { .rcuRead(1) }

    @inlinable @inline(__always) public static func primitiveReadLock() { curcu_qsbr_read_lock() }
    @inlinable @inline(__always) public static func primitiveReadUnlock() { curcu_qsbr_read_unlock() }
    /// No instruction in release builds; debug builds count nesting for misuse checks.
    @inlinable @inline(__always) public static func primitiveReadLockRegistered() {
        #if DEBUG
        curcu_qsbr_depth_enter()
        #endif
        curcu_qsbr_read_lock_registered()
    }
    @inlinable @inline(__always) public static func primitiveReadUnlockRegistered() {
        curcu_qsbr_read_unlock_registered()
        #if DEBUG
        curcu_qsbr_depth_exit()
        #endif
    }
    /// QSBR has no read-side state of its own; the shim's nesting depth answers.
    @inlinable public static var primitiveIsInReadSection: Bool { curcu_qsbr_read_depth() > 0 }

    @inlinable public static func primitiveSynchronize() { curcu_qsbr_synchronize() }
    @inlinable public static func primitiveBarrier() { curcu_qsbr_barrier() }
    @inlinable public static func primitiveCall(_ function: RCUCallbackFunction, _ context: UnsafeMutableRawPointer) {
        curcu_qsbr_call(function, context)
    }
    @inlinable public static func primitiveDefer(_ function: RCUCallbackFunction, _ context: UnsafeMutableRawPointer) {
        curcu_qsbr_defer(function, context)
    }
    public static func primitiveDeferBarrier() { curcu_qsbr_defer_barrier() }
    public static var primitiveIsInCallback: Bool { curcu_qsbr_in_callback() }

    public static func registerThread() { curcu_qsbr_register_thread() }
    public static func unregisterThread() { curcu_qsbr_unregister_thread() }
    @inlinable public static var isThreadRegistered: Bool { curcu_qsbr_is_registered() }
    public static var registeredThreadCount: Int { curcu_qsbr_registered_thread_count() }
    public static var staleReadersAfterFork: Int { curcu_qsbr_stale_readers_after_fork() }

    public static var pendingCallbacks: Int { curcu_qsbr_pending_callbacks() }
    public static var completedCallbacks: Int { curcu_qsbr_completed_callbacks() }
    public static func forEachBlockingReader(_ visit: (_ tid: Int, _ name: String) -> Void) {
        BlockingReaderVisit.collect(curcu_qsbr_for_each_blocking_reader).forEach { visit($0.tid, $0.name) }
    }
    public static var hasSysMembarrier: Bool { false }

    public static func primitiveCreateCallRCUData(flags: UInt, cpu: Int32) -> OpaquePointer? {
        curcu_qsbr_create_call_rcu_data(flags, cpu)
    }
    public static func primitiveFreeCallRCUData(_ data: OpaquePointer) { curcu_qsbr_call_rcu_data_free(data) }
    public static func primitiveSetThreadCallRCUData(_ data: OpaquePointer?) { curcu_qsbr_set_thread_call_rcu_data(data) }
    public static func primitiveThreadCallRCUData() -> OpaquePointer? { curcu_qsbr_get_thread_call_rcu_data() }
    public static func primitiveDefaultCallRCUData() -> OpaquePointer? { curcu_qsbr_get_default_call_rcu_data() }
    public static func primitiveCreatePerCPUCallRCUData(flags: UInt) -> Int32 { curcu_qsbr_create_all_cpu_call_rcu_data(flags) }
    public static func primitiveFreePerCPUCallRCUData() { curcu_qsbr_free_all_cpu_call_rcu_data() }

    public static func beforeFork() { curcu_qsbr_before_fork() }
    public static func afterForkParent() { curcu_qsbr_after_fork_parent() }
    public static func afterForkChild() { curcu_qsbr_after_fork_child() }
}
