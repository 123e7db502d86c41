public import Lockdep

/// The C function liburcu's call_rcu worker runs for a callback queued through the shims.
public typealias RCUCallbackFunction = @convention(c) (UnsafeMutableRawPointer?) -> Void

/// One of liburcu's RCU implementations ("flavors"), as a type.
///
/// Code that is generic over `RCUFlavor` specialises to the flavor's inline
/// fast path, the same machine code a C caller of liburcu gets. The four
/// flavors trade read-side cost against constraints on readers:
///
/// | Flavor | Read lock + unlock | Reader obligations |
/// |---|---|---|
/// | ``RCUMemb`` (default) | ~1 ns | none (registered automatically) |
/// | ``RCUQSBR`` | 0 instructions | announce quiescent states periodically |
/// | ``RCUBulletproof`` | ~1.5 ns | none; registers itself, safe from any thread |
/// | ``RCUMemoryBarrier`` | ~50 ns (full fence) | none |
///
/// The requirements below are the raw shim primitives: they do no misuse
/// checking. Use the checked API that every flavor gets from extensions:
/// ``RCUFlavor/read(file:line:_:)``, ``RCUFlavor/synchronize(file:line:)``,
/// ``RCUFlavor/barrier(file:line:)``, ``RCUFlavor/retire(_:)-(AnyObjectSendable)`` and ``RCUPointer``.
public protocol RCUFlavor: Sendable {
    /// liburcu's name for the flavor: `memb`, `qsbr`, `bp` or `mb`.
    static var name: String { get }

    /// Lockdep's pseudo-lock for this flavor's read sections (the kernel's
    /// `rcu_lock_map`): sections acquire it for recursive read, `synchronize()`
    /// and `barrier()` are an empty write section on it. Atomic: sleeping
    /// inside a section is "sleeping function called from invalid context".
    static var lockdepMap: LockdepMap { get }
    /// Where ``lockdepMap`` is published for read sections, which read it from
    /// this C cell with plain loads instead of through the lazy static.
    static var lockdepCell: LockdepMapCell { get }

    /// Enters a read-side critical section, registering the thread first if needed.
    static func primitiveReadLock()
    /// Leaves a read-side critical section. No balance check.
    static func primitiveReadUnlock()
    /// liburcu's bare read lock, for a thread known to be registered (and, for QSBR, online).
    static func primitiveReadLockRegistered()
    /// The unlock matching ``primitiveReadLockRegistered()``.
    static func primitiveReadUnlockRegistered()
    /// Whether the calling thread is inside a read-side critical section.
    static var primitiveIsInReadSection: Bool { get }

    /// liburcu's `synchronize_rcu`, unchecked.
    static func primitiveSynchronize()
    /// liburcu's `rcu_barrier`, unchecked.
    static func primitiveBarrier()
    /// liburcu's `call_rcu`: runs `function(context)` after a grace period on a call_rcu worker.
    static func primitiveCall(_ function: RCUCallbackFunction, _ context: UnsafeMutableRawPointer)
    /// liburcu's `defer_rcu`: batched; may wait for a grace period when its queue is full.
    static func primitiveDefer(_ function: RCUCallbackFunction, _ context: UnsafeMutableRawPointer)
    /// liburcu's `rcu_defer_barrier`: runs every callback queued with `defer_rcu` by any thread.
    static func primitiveDeferBarrier()
    /// Whether the calling thread is running a callback queued through the shims.
    static var primitiveIsInCallback: Bool { get }

    /// Registers the calling thread as a reader (idempotent). Read sections do this automatically.
    static func registerThread()
    /// Unregisters the calling thread (idempotent). Threads that exit are unregistered automatically.
    static func unregisterThread()
    /// Whether the calling thread is registered with this flavor.
    static var isThreadRegistered: Bool { get }
    /// The number of threads currently registered through this package.
    static var registeredThreadCount: Int { get }

    /// Callbacks queued with call_rcu and not yet run (the call_rcu backlog).
    static var pendingCallbacks: Int { get }
    /// Callbacks run since the process started.
    static var completedCallbacks: Int { get }

    /// Calls `visit(tid, name)` for each registered thread that currently holds up a grace period.
    static func forEachBlockingReader(_ visit: (_ tid: Int, _ name: String) -> Void)

    /// Whether the read side is backed by the kernel's `membarrier` system call (memb and bp).
    static var hasSysMembarrier: Bool { get }

    /// The call_rcu worker-data primitives (`struct call_rcu_data *`).
    static func primitiveCreateCallRCUData(flags: UInt, cpu: Int32) -> OpaquePointer?
    static func primitiveFreeCallRCUData(_ data: OpaquePointer)
    static func primitiveSetThreadCallRCUData(_ data: OpaquePointer?)
    static func primitiveThreadCallRCUData() -> OpaquePointer?
    static func primitiveDefaultCallRCUData() -> OpaquePointer?
    static func primitiveCreatePerCPUCallRCUData(flags: UInt) -> Int32
    static func primitiveFreePerCPUCallRCUData()

    /// In a child of `fork()`: how many other threads were registered readers of this
    /// flavor at the fork (0 otherwise). Such a child cannot wait for grace periods.
    static var staleReadersAfterFork: Int { get }

    /// liburcu's call_rcu fork hooks (installed automatically with `pthread_atfork`).
    static func beforeFork()
    static func afterForkParent()
    static func afterForkChild()
}

/// The default flavor: liburcu's memb (membarrier-based readers).
public typealias DefaultRCU = RCUMemb
