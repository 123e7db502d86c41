import CURCUCDS
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Glue shared by the RCU containers: flavor structs, checks, teardown threads.
@usableFromInline
enum RCUContainerSupport {
    /// liburcu's `struct rcu_flavor_struct` of `Flavor`, which liburcu-cds containers take.
    static func flavorStruct<Flavor: RCUFlavor>(_: Flavor.Type) -> UnsafePointer<rcu_flavor_struct> {
        Flavor.flavorDescription.cdsFlavor.assumingMemoryBound(to: rcu_flavor_struct.self)
    }

    /// The flavors whose fork hooks this process has made sure of (one bit each).
    private static let forkHooksEnsured = Atomic<UInt8>(0)

    /// Makes sure `Flavor`'s fork hooks are installed before a container that needs them exists.
    ///
    /// The shim installs them (`pthread_atfork` over liburcu's `call_rcu_before_fork` and
    /// `call_rcu_after_fork_*`) on the flavor's first `call_rcu`. rculfhash registers its own
    /// hooks with the flavor's (`register_rculfhash_atfork`): they pause the table's resize
    /// worker before a fork and start a new one in the child. Without them the child has no
    /// worker, and `cds_lfht_destroy`, which waits for it, never returns. A map may be created,
    /// grown and dropped without a single `call_rcu`, so its creation queues one (a no-op).
    static func ensureForkHooks<Flavor: RCUFlavor>(_: Flavor.Type) {
        let bit = UInt8(1) << Flavor.kind.rawValue
        guard forkHooksEnsured.load(ordering: .acquiring) & bit == 0 else { return }
        Flavor.primitiveCall(nothing, UnsafeMutableRawPointer(bitPattern: 1)!)
        forkHooksEnsured.bitwiseOr(bit, ordering: .releasing)
    }

    private static let nothing: RCUCallbackFunction = { _ in }

    /// Reader threads of any flavor that this process, a child of `fork()`, inherited
    /// registered: the parent's other registered readers. The shim then leaves liburcu's
    /// fork hooks unfinished in the child (no call_rcu worker, no rculfhash resize worker,
    /// their locks held), so nothing in the child may wait for either.
    static var staleReadersAfterFork: Int {
        RCUFlavorKind.allCases.reduce(0) { $0 + $1.flavorType.staleReadersAfterFork }
    }

    /// Runs `work` on a new detached thread (for teardown that may not run where deinit did).
    static func runOnNewThread(_ work: @escaping @Sendable () -> Void) {
        let context = Unmanaged.passRetained(RCUCallbacks.Closure(work)).toOpaque()
        var thread = pthread_t()
        let status = pthread_create(&thread, nil, { context in
            Unmanaged<RCUCallbacks.Closure>.fromOpaque(context!).takeRetainedValue().work()
            return nil
        }, context)
        precondition(status == 0, "pthread_create failed: \(status)")
        pthread_detach(thread)
    }

    /// Runs `body` where it may wait for grace periods: for QSBR, with the thread offline.
    static func whereGracePeriodsMayElapse<Flavor: RCUFlavor>(_: Flavor.Type, _ body: () -> Void) {
        Flavor.offlineIfQSBR(body)
    }
}

/// A value that crosses to a teardown thread; the caller guarantees exclusive use.
struct RCUUncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
}
