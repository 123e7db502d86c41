import CReference
import RCU

/// The `read-cost` comparisons: each flavor's Swift API loop against the C
/// loop over liburcu, in the same process, alternating round by round.
enum ReadCostBenchmarks {
    /// One flavor: the C loop, the loop in a `withReader` scope and the generic
    /// `Flavor.read` loop outside it (for qsbr it brings the thread online and offline
    /// around each section), alternating round by round.
    ///
    /// The reader scope ends with the measurement, so a qsbr thread does not
    /// stay online and stall grace periods.
    static func compare<Flavor: RCUFlavor>(
        _ flavor: Flavor.Type, cLoop: CReadLoop, _ measurement: ReadCostMeasurement
    ) throws(ReadCostError) -> ReadCostResult {
        let pointer = RCUPointer<BenchNode, Flavor>(BenchNode.one())
        let ns = try withCSlot { cSlot throws(ReadCostError) in
            try measurement.nanosecondsPerRead(sides: 3) { side, iterations in
                switch side {
                case 0: Int(truncatingIfNeeded: cLoop(cSlot, UInt64(iterations)))
                case 1: Flavor.withReader { reader in ReadCostLoops.swiftReaderLoop(reader, pointer, iterations: iterations) }
                default: ReadCostLoops.swiftReadLoop(pointer, iterations: iterations)
                }
            }
        }
        return ReadCostResult(
            name: Flavor.name, cNanoseconds: ns[0], swiftNanoseconds: ns[1], genericSwiftNanoseconds: ns[2])
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
