
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
/// | ``RCUMemb`` (default) | ~1.5 ns; ~1 ns in a ``RCUFlavor/withReader(fileID:line:_:)`` scope | none (registered automatically) |
/// | ``RCUQSBR`` | ~1 ns in a ``RCUFlavor/withReader(fileID:line:_:)`` scope | announce quiescent states there |
/// | ``RCUBulletproof`` | ~1.5 ns | none; registers itself, safe from any thread |
/// | ``RCUMemoryBarrier`` | ~50 ns (full fence) | none |
///
/// The four flavor types are the only conformances: every operation is derived
/// from which of them `Self` is (``kind``), in extensions, and liburcu's raw
/// primitives are not public. Code specialised for a flavor keeps only its own
/// case. Any other conforming type is refused: its first operation stops the
/// process with a report naming it.
public protocol RCUFlavor: Sendable {}

extension RCUFlavor {
    /// Which liburcu flavor this type is.
    @inlinable
    @inline(__always)
    public static var kind: RCUFlavorKind {
        if Self.self == RCUMemb.self { return .memb }
        if Self.self == RCUQSBR.self { return .qsbr }
        if Self.self == RCUBulletproof.self { return .bulletproof }
        if Self.self == RCUMemoryBarrier.self { return .memoryBarrier }
        unsupportedConformance()
    }

    /// A type outside the package conformed: it could name one flavor to readers and
    /// another to writers, so nothing it does can be trusted to be protected.
    @usableFromInline
    static func unsupportedConformance() -> Never {
        let message =
            "RCU misuse: \(Self.self) conforms to RCUFlavor, but only RCUMemb, RCUQSBR, RCUBulletproof and "
            + "RCUMemoryBarrier are flavors (use one of them, or a typealias)"
        CurrentThread.printError(message)
        fatalError(message)
    }
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
