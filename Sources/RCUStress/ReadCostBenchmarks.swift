import CReference
import RCU

/// The `read-cost` comparisons: each flavor's Swift API loop against the C
/// loop over liburcu, in the same process, alternating round by round.
enum ReadCostBenchmarks {
    /// memb, bp or mb: `Flavor.read` + `RCUPointer.withValue(in:)` against `cLoop`.
    static func compare<Flavor: RCUFlavor>(
        _ flavor: Flavor.Type, cLoop: CReadLoop, _ measurement: ReadCostMeasurement
    ) throws(ReadCostError) -> ReadCostResult {
        let pointer = RCUPointer<BenchNode, Flavor>(BenchNode.one())
        let ns = try withCSlot { cSlot throws(ReadCostError) in
            try measurement.nanosecondsPerRead(sides: 2) { side, iterations in
                side == 0
                    ? Int(truncatingIfNeeded: cLoop(cSlot, UInt64(iterations)))
                    : ReadCostLoops.swiftReadLoop(pointer, iterations: iterations)
            }
        }
        return ReadCostResult(name: Flavor.name, cNanoseconds: ns[0], swiftNanoseconds: ns[1])
    }

    /// qsbr: the C loop, the registered-reader Swift loop (what `RCUQSBR.Reader`
    /// compiles to), and the generic `RCUQSBR.read` section.
    ///
    /// The thread is registered for the measurement and unregistered after it,
    /// so it does not stall grace periods (an online QSBR reader that never
    /// reports a quiescent state would).
    static func compareQSBR(_ measurement: ReadCostMeasurement) throws(ReadCostError) -> ReadCostResult {
        RCUQSBR.registerThread()
        defer { RCUQSBR.unregisterThread() }
        let pointer = RCUPointer<BenchNode, RCUQSBR>(BenchNode.one())
        let node = Unmanaged.passRetained(BenchNode.one())
        defer { node.release() }
        let swiftSlot = UnsafeMutablePointer<UnsafeMutableRawPointer?>.allocate(capacity: 1)
        swiftSlot.initialize(to: node.toOpaque())
        defer { swiftSlot.deallocate() }
        let ns = try withCSlot { cSlot throws(ReadCostError) in
            try measurement.nanosecondsPerRead(sides: 3) { side, iterations in
                switch side {
                case 0: Int(truncatingIfNeeded: creference_qsbr_read_loop(cSlot, UInt64(iterations)))
                case 1: ReadCostLoops.swiftQSBRRegisteredReadLoop(swiftSlot, iterations: iterations)
                default: ReadCostLoops.swiftReadLoop(pointer, iterations: iterations)
                }
            }
        }
        return ReadCostResult(
            name: RCUQSBR.name, cNanoseconds: ns[0], swiftNanoseconds: ns[1], genericSwiftNanoseconds: ns[2])
    }

    /// The C read loop under an uncontended pthread rwlock and mutex.
    static func lockBaselines(_ measurement: ReadCostMeasurement) throws(ReadCostError) -> [ReadCostResult] {
        let ns = try withCSlot { cSlot throws(ReadCostError) in
            try measurement.nanosecondsPerRead(sides: 2) { side, iterations in
                Int(
                    truncatingIfNeeded: side == 0
                        ? creference_rwlock_read_loop(cSlot, UInt64(iterations))
                        : creference_mutex_read_loop(cSlot, UInt64(iterations)))
            }
        }
        return [
            ReadCostResult(name: "rwlock", cNanoseconds: ns[0], swiftNanoseconds: nil),
            ReadCostResult(name: "mutex", cNanoseconds: ns[1], swiftNanoseconds: nil),
        ]
    }

    /// Calls `body` with a slot publishing a C node that holds 1.
    static func withCSlot<Result>(
        _ body: (UnsafeMutablePointer<UnsafeMutableRawPointer?>) throws(ReadCostError) -> Result
    ) throws(ReadCostError) -> Result {
        let node = creference_node_create(1)
        defer { creference_node_destroy(node) }
        let slot = UnsafeMutablePointer<UnsafeMutableRawPointer?>.allocate(capacity: 1)
        slot.initialize(to: UnsafeMutableRawPointer(node))
        defer { slot.deallocate() }
        return try body(slot)
    }
}
