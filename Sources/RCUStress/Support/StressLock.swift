/// A plain pthread mutex for the harness's own bookkeeping (collecting results),
/// visible to ThreadSanitizer. Not on any measured path.
final class StressLock: Sendable {
    private let mutex = BaselineMutex()

    /// Runs `body` holding the mutex.
    func withLock<Result>(_ body: () throws -> Result) rethrows -> Result {
        mutex.writeLock()
        defer { mutex.writeUnlock() }
        return try body()
    }
}
