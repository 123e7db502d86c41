import Lockdep

/// What surrounds every callback a call_rcu worker runs for this package.
@usableFromInline
enum RCUCallbackContext {
    /// Runs one callback in Lockdep's softirq context: call_rcu workers are this
    /// package's softirq, so a sleeping lock taken in a callback is reported.
    @inline(__always)
    static func run(_ callback: () -> Void) {
        #if LOCKDEP_CHECKS
        Lockdep.withContext(.softirq, callback)
        #else
        callback()
        #endif
    }
}
