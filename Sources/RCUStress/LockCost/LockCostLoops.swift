#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Lockdep

/// The loops `lock-cost` times, and the single pairs `scripts/lock-cost-disasm.sh`
/// disassembles. Each is `@inline(never)` so it is one stand-alone function.
enum LockCostLoops {
    /// `iterations` uncontended `pthread_mutex_lock` / `pthread_mutex_unlock` pairs.
    /// - Returns: `iterations` (the harness checks it).
    @inline(never)
    static func plainLoop(_ mutex: UnsafeMutablePointer<pthread_mutex_t>, iterations: Int) -> Int {
        var pairs = 0
        for _ in 0..<iterations {
            pthread_mutex_lock(mutex)
            pairs &+= 1
            pthread_mutex_unlock(mutex)
        }
        return pairs
    }

    /// `iterations` uncontended `CheckedMutex` lock / unlock pairs from one call site
    /// (one lock class, so after the first pair the chain is cached).
    @inline(never)
    static func checkedLoop(_ mutex: CheckedMutex, iterations: Int) -> Int {
        var pairs = 0
        for _ in 0..<iterations {
            mutex.lock()
            pairs &+= 1
            mutex.unlock()
        }
        return pairs
    }

    /// One plain pair, for the machine-code comparison.
    @inline(never)
    static func plainPair(_ mutex: UnsafeMutablePointer<pthread_mutex_t>) {
        pthread_mutex_lock(mutex)
        pthread_mutex_unlock(mutex)
    }

    /// One checked pair, for the machine-code comparison: with checks compiled
    /// out it should be the same two calls as ``plainPair(_:)`` plus the
    /// address computation of the mutex inside the `CheckedMutex` storage.
    @inline(never)
    static func checkedPair(_ mutex: CheckedMutex) {
        mutex.lock()
        mutex.unlock()
    }
}
