import Foundation

/// State guarded by an `NSLock` (a pthread mutex, which ThreadSanitizer sees;
/// it cannot see the futex inside `Synchronization.Mutex` on Linux).
public final class Locked<State>: @unchecked Sendable {
    private let lock = NSLock()
    private var state: State
    public init(_ state: State) { self.state = state }

    public func withLock<Result>(_ body: (inout State) throws -> Result) rethrows -> Result {
        lock.lock()
        defer { lock.unlock() }
        return try body(&state)
    }

    /// The state, read or replaced whole under the lock (results passed out of threads).
    public var value: State {
        get { withLock { $0 } }
        set { withLock { $0 = newValue } }
    }
}
