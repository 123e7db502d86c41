/// What surrounds every callback a call_rcu worker runs for this package.
@usableFromInline
enum RCUCallbackContext {
    /// Runs one callback. call_rcu workers are this package's "softirq" context.
    @inline(__always)
    static func run(_ callback: () -> Void) {
        callback()
    }
}
