import Lockdep

/// What surrounds every callback a call_rcu worker runs for this package.
@usableFromInline
enum RCUCallbackContext {
    /// Runs one callback in Lockdep's softirq context: call_rcu workers are this
    /// package's softirq, so a sleeping lock taken in a callback is reported. The stall
    /// detector sees the worker inside the callback (two stores), so a `barrier()` or a
    /// backlog that a stuck callback holds up is reported naming the worker and, with
    /// Lockdep's checks, the lock the callback is blocked on; a worker whose thread exits
    /// inside the callback (`Thread.exit()`) is named in every later such report.
    @inline(__always)
    static func run(_ callback: () -> Void) {
        RCUStallDetector.runningCallback {
            #if LOCKDEP_CHECKS
            Lockdep.withContext(.softirq, callback)
            #else
            callback()
            #endif
        }
    }
}
