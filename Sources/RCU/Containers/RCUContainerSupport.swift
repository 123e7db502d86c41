import CURCUCDS
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
        if Flavor.self == RCUMemb.self { return curcu_cds_flavor_memb() }
        if Flavor.self == RCUQSBR.self { return curcu_cds_flavor_qsbr() }
        if Flavor.self == RCUBulletproof.self { return curcu_cds_flavor_bp() }
        if Flavor.self == RCUMemoryBarrier.self { return curcu_cds_flavor_mb() }
        preconditionFailure("RCU containers support the memb, qsbr, bp and mb flavors, not \(Flavor.name)")
    }

    /// Reports a container access through a section that `readUnlock()` closed (debug builds).
    @inlinable
    @inline(__always)
    static func checkSection<Flavor: RCUFlavor>(
        _: Flavor.Type, call: @autoclosure () -> String, file: StaticString, line: UInt
    ) -> Bool {
        #if DEBUG
        if !Flavor.primitiveIsInReadSection {
            RCUMisuse.report(.accessOutsideReadSection, call: call(), flavor: Flavor.name, file: file, line: line)
            return false
        }
        #endif
        return true
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
        if Flavor.self == RCUQSBR.self && RCUQSBR.isOnline {
            RCUQSBR.offline(body)
        } else {
            body()
        }
    }
}

/// A value that crosses to a teardown thread; the caller guarantees exclusive use.
struct RCUUncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
}
