
/// The C function liburcu's call_rcu worker runs for a callback queued through the shims.
public typealias RCUCallbackFunction = @convention(c) (UnsafeMutableRawPointer?) -> Void

/// Which of liburcu's RCU implementations a flavor type is.
public enum RCUFlavorKind: Sendable, Hashable, CaseIterable {
    /// liburcu's `memb` (``RCUMemb``).
    case memb
    /// liburcu's `qsbr` (``RCUQSBR``).
    case qsbr
    /// liburcu's `bp` (``RCUBulletproof``).
    case bulletproof
    /// liburcu's `mb` (``RCUMemoryBarrier``).
    case memoryBarrier

    /// liburcu's name for the flavor: `memb`, `qsbr`, `bp` or `mb`.
    public var name: String {
        switch self {
        case .memb: "memb"
        case .qsbr: "qsbr"
        case .bulletproof: "bp"
        case .memoryBarrier: "mb"
        }
    }
}

/// One of liburcu's RCU implementations ("flavors"), as a type.
///
/// Code that is generic over `RCUFlavor` specialises to the flavor's inline
/// fast path, the same machine code a C caller of liburcu gets. The four
/// flavors trade read-side cost against constraints on readers:
///
/// | Flavor | Read lock + unlock | Reader obligations |
/// |---|---|---|
/// | ``RCUMemb`` (default) | ~1 ns | none (registered automatically) |
/// | ``RCUQSBR`` | under 1 ns in a ``RCUFlavor/withReader(file:line:_:)`` scope | announce quiescent states there |
/// | ``RCUBulletproof`` | ~1.5 ns | none; registers itself, safe from any thread |
/// | ``RCUMemoryBarrier`` | ~50 ns (full fence) | none |
///
/// A flavor type only names its ``kind``: every operation is derived from it,
/// in extensions, and liburcu's raw primitives are not public. Any type that
/// conforms therefore behaves exactly as the flavor it names.
public protocol RCUFlavor: Sendable {
    /// Which liburcu flavor this type is.
    static var kind: RCUFlavorKind { get }
}

extension RCUFlavor {
    /// liburcu's name for the flavor: `memb`, `qsbr`, `bp` or `mb`.
    @inlinable
    public static var name: String { kind.name }

    /// Whether the calling thread is registered with this flavor.
    @inlinable
    public static var isThreadRegistered: Bool { primitiveIsThreadRegistered }

    /// Whether the calling thread is inside a read-side critical section of this flavor.
    @inlinable
    public static var isInReadSection: Bool { primitiveIsInReadSection }

    /// Whether the calling thread is running a call_rcu callback of this flavor
    /// (this package's softirq context: no blocking, no `barrier()`).
    public static var isInCallback: Bool { primitiveIsInCallback }

    /// The number of threads currently registered through this package.
    public static var registeredThreadCount: Int { primitiveRegisteredThreadCount }

    /// Callbacks queued with call_rcu and not yet run (the call_rcu backlog).
    public static var pendingCallbacks: Int { primitivePendingCallbacks }

    /// Callbacks run since the process started.
    public static var completedCallbacks: Int { primitiveCompletedCallbacks }

    /// Whether the read side is backed by the kernel's `membarrier` system call (memb and bp).
    public static var hasSysMembarrier: Bool { primitiveHasSysMembarrier }

    /// In a child of `fork()`: how many other threads were registered readers of this
    /// flavor at the fork (0 otherwise). Such a child cannot wait for grace periods.
    public static var staleReadersAfterFork: Int { primitiveStaleReadersAfterFork }

    /// Calls `visit(tid, name)` for each registered thread that currently holds up a grace period.
    public static func forEachBlockingReader(_ visit: (_ tid: Int, _ name: String) -> Void) {
        primitiveBlockingReaders().forEach { visit($0.tid, $0.name) }
    }
}

/// The default flavor: liburcu's memb (membarrier-based readers).
public typealias DefaultRCU = RCUMemb
