internal import Glibc

/// `fork()` and the validator's locks: a child of a multithreaded process has only the forking
/// thread, so a lock another thread held at the fork would stay held in the child for ever,
/// and the child's first lock operation that reaches the graph would hang.
///
/// The prepare handler takes both locks (so their state is whole at the fork), the parent
/// handler releases them, and the child handler makes them new and unlocked (the child's
/// thread cannot unlock an error-checking mutex taken under its parent-side thread id).
enum LockdepFork {
    /// Installs the handlers; called once, by the graph's initializer.
    static func installHandlers() {
        let status = pthread_atfork(
            { Engine.statistics.lock.lock(); graph.lock.lock() },
            { graph.lock.unlock(); Engine.statistics.lock.unlock() },
            { graph.lock.reinitializeInForkedChild(); Engine.statistics.lock.reinitializeInForkedChild() })
        precondition(status == 0, "lockdep: pthread_atfork failed (\(status)): a child of fork() could hang in the validator")
    }
}
