import CReference
import CURCUMemb
import RCU

/// `read-cost --breakdown`: where the memb Swift loop's extra time goes.
///
/// The API loop (`RCUMemb.read` + `withValue` + `$0!`) adds two tests to C's
/// loop body: the registration check of `curcu_memb_read_lock` (a load of
/// liburcu's TLS `registered` field, on another cache line than `ctr`, and a
/// branch) and the nil check of `$0!` (a test and a branch). These loops take
/// each one out, with the shim's primitives, on a thread registered beforehand.
enum ReadCostBreakdown {
    /// One measurement: nanoseconds per read of each variant.
    struct Result {
        let c: Double
        let api: Double
        let registered: Double
        let uncheckedNil: Double
        let registeredUncheckedNil: Double

        var jsonLine: String {
            let j = ReadCostResult.json
            return #"{"breakdown":"memb","c_ns":\#(j(c)),"api_ns":\#(j(api)),"registered_ns":\#(j(registered)),"#
                + #""unchecked_nil_ns":\#(j(uncheckedNil)),"registered_unchecked_nil_ns":\#(j(registeredUncheckedNil))}"#
        }

        var tableRows: [String] {
            let rows: [(String, Double)] = [
                ("C loop (liburcu inline)", c),
                ("RCUMemb.read + withValue + $0!", api),
                ("no registration check, $0!", registered),
                ("registration check, no nil check", uncheckedNil),
                ("neither", registeredUncheckedNil),
            ]
            return ["", "memb breakdown                      ns/read   / C"]
                + rows.map { label, ns in
                    label + String(repeating: " ", count: 34 - label.count)
                        + ReadCostResult.fixed(ns, width: 9) + ReadCostResult.fixed(ns / c, width: 8)
                }
        }
    }

    static func measure(_ measurement: ReadCostMeasurement) throws(ReadCostError) -> Result {
        RCUMemb.registerThread()
        let pointer = RCUPointer<BenchNode, RCUMemb>(BenchNode.one())
        let node = Unmanaged.passRetained(BenchNode.one())
        defer { node.release() }
        let slot = UnsafeMutablePointer<UnsafeMutableRawPointer?>.allocate(capacity: 1)
        slot.initialize(to: node.toOpaque())
        defer { slot.deallocate() }
        let ns = try ReadCostBenchmarks.withCSlot { cSlot throws(ReadCostError) in
            try measurement.nanosecondsPerRead(sides: 5) { side, iterations in
                switch side {
                case 0: Int(truncatingIfNeeded: creference_memb_read_loop(cSlot, UInt64(iterations)))
                case 1: ReadCostLoops.swiftReadLoop(pointer, iterations: iterations)
                case 2: registeredLoop(slot, iterations: iterations)
                case 3: uncheckedNilLoop(slot, iterations: iterations)
                default: registeredUncheckedNilLoop(slot, iterations: iterations)
                }
            }
        }
        return Result(c: ns[0], api: ns[1], registered: ns[2], uncheckedNil: ns[3], registeredUncheckedNil: ns[4])
    }

    /// `curcu_memb_read_lock_registered()`: liburcu's bare fast path; `!` kept.
    @inline(never)
    static func registeredLoop(_ slot: UnsafeMutablePointer<UnsafeMutableRawPointer?>, iterations: Int) -> Int {
        var sum = 0
        for _ in 0..<iterations {
            curcu_memb_read_lock_registered()
            Unmanaged<BenchNode>.fromOpaque(curcu_pointer_load(slot)!)._withUnsafeGuaranteedRef { sum &+= $0.value }
            curcu_memb_read_unlock()
        }
        return sum
    }

    /// The checked `curcu_memb_read_lock()`; `unsafelyUnwrapped` instead of `!`.
    @inline(never)
    static func uncheckedNilLoop(_ slot: UnsafeMutablePointer<UnsafeMutableRawPointer?>, iterations: Int) -> Int {
        var sum = 0
        for _ in 0..<iterations {
            curcu_memb_read_lock()
            Unmanaged<BenchNode>.fromOpaque(curcu_pointer_load(slot).unsafelyUnwrapped)._withUnsafeGuaranteedRef {
                sum &+= $0.value
            }
            curcu_memb_read_unlock()
        }
        return sum
    }

    /// Neither check: the same instructions as the C loop.
    @inline(never)
    static func registeredUncheckedNilLoop(
        _ slot: UnsafeMutablePointer<UnsafeMutableRawPointer?>, iterations: Int
    ) -> Int {
        var sum = 0
        for _ in 0..<iterations {
            curcu_memb_read_lock_registered()
            Unmanaged<BenchNode>.fromOpaque(curcu_pointer_load(slot).unsafelyUnwrapped)._withUnsafeGuaranteedRef {
                sum &+= $0.value
            }
            curcu_memb_read_unlock()
        }
        return sum
    }
}
