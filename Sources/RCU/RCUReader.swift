/// The calling thread's registration with a flavor, held for as long as the
/// thread reads in a hot loop: read sections through it skip the
/// registration check that ``RCUFlavor/read(file:line:_:)`` makes, so they are exactly
/// liburcu's inline fast path (nothing at all for ``RCUQSBR``).
///
/// ```swift
/// let reader = RCUReader<RCUMemb>()
/// for request in requests {
///     reader.read { section in routes.withValue(in: section) { route($0, request) } }
/// }
/// ```
///
/// A reader is noncopyable and not `Sendable`: it belongs to the thread that
/// created it, which stays registered while it exists. If the reader
/// registered the thread, it unregisters it when destroyed.
///
/// For ``RCUQSBR`` a reader also keeps the thread *online*: grace periods wait
/// for it until it calls ``quiescentState(file:line:)`` or goes ``offline(file:line:_:)``.
/// Forgetting is reported by ``RCUStallDetector``, naming the thread.
public struct RCUReader<Flavor: RCUFlavor>: ~Copyable {
    @usableFromInline let ownsRegistration: Bool
    /// QSBR: the thread was registered but offline (as generic sections leave it) and this
    /// reader brought it online; it goes offline again when the reader is destroyed.
    @usableFromInline let broughtOnline: Bool

    /// Registers the calling thread with `Flavor`, if it is not already (and, for
    /// ``RCUQSBR``, brings it online: its sections are only safe online).
    public init() {
        ownsRegistration = !Flavor.isThreadRegistered
        Flavor.registerThread()
        if Flavor.self == RCUQSBR.self {
            broughtOnline = !RCUQSBR.isOnline
            if broughtOnline { RCUQSBR.threadOnline() }
            RCUStallDetector.enable()
        } else {
            broughtOnline = false
        }
    }

    deinit {
        if ownsRegistration {
            Flavor.unregisterThread()
        } else if broughtOnline {
            RCUQSBR.threadOffline()
        }
    }

    /// Runs `body` inside a read section on liburcu's bare fast path.
    ///
    /// Same contract as ``RCUFlavor/read(file:line:_:)``: sections nest, `body` is
    /// synchronous and must not block.
    /// - Complexity: memb ~1 ns, bp ~1.5 ns, mb ~50 ns, qsbr no instruction.
    @inlinable
    @inline(__always)
    public func read<Result, Failure: Error>(
        file: StaticString = #fileID, line: UInt = #line,
        _ body: (borrowing RCUReadSection<Flavor>) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        Flavor.primitiveReadLockRegistered()
        Flavor.lockdepEnterReadSection(file, line)
        defer {
            Flavor.lockdepExitReadSection(file, line)
            Flavor.primitiveReadUnlockRegistered()
        }
        return try body(RCUReadSection<Flavor>())
    }
}

extension RCUReader where Flavor == RCUQSBR {
    /// Announces that this thread holds no reference obtained in an earlier section.
    @inlinable
    public func quiescentState(file: StaticString = #fileID, line: UInt = #line) {
        RCUQSBR.quiescentState(file: file, line: line)
    }

    /// Runs `body` with the thread offline: grace periods do not wait for it.
    /// Use it around anything that blocks (I/O, sleeping locks, waits).
    public func offline<Result, Failure: Error>(
        file: StaticString = #fileID, line: UInt = #line, _ body: () throws(Failure) -> Result
    ) throws(Failure) -> Result {
        try RCUQSBR.offline(file: file, line: line, body)
    }
}
