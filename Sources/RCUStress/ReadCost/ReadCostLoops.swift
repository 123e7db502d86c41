import CReference
import RCU

/// The Swift side of `read-cost`: the loops users write with the RCU API.
///
/// Each loop is `@inline(never)`, so it is measured as one stand-alone function
/// with nothing of the harness folded into it, and generic, so it is measured
/// as users get it: specialised for a concrete flavor, with the flavor's read
/// lock and unlock inlined (`scripts/check-inline-fast-path.sh` checks that
/// no `urcu_*_read_lock` call survives in the release binary).
enum ReadCostLoops {
    /// `iterations` read sections, each dereferencing `pointer` and adding the
    /// object's value: `Flavor.read { s in ptr.withValue(in: s) { sum &+= $0.value } }`
    /// (`unsafelyUnwrapped`: the C loop does not test for NULL either).
    /// - Returns: The sum of the values read.
    @inline(never)
    static func swiftReadLoop<Flavor: RCUFlavor>(
        _ pointer: borrowing RCUPointer<BenchNode, Flavor>, iterations: Int
    ) -> Int {
        var sum = 0
        for _ in 0..<iterations {
            Flavor.read { section in
                pointer.withValue(in: section) { sum &+= $0.value }
            }
        }
        return sum
    }

    /// The same loop through a scope's `RCUReader`, as hot readers run it: liburcu's
    /// inline read side behind the registration branch (for qsbr a thread-local depth).
    @inline(never)
    static func swiftReaderLoop<Flavor: RCUFlavor>(
        _ reader: borrowing RCUReader<Flavor>, _ pointer: borrowing RCUPointer<BenchNode, Flavor>, iterations: Int
    ) -> Int {
        var sum = 0
        for _ in 0..<iterations {
            reader.read { section in
                pointer.withValue(in: section) { sum &+= $0.value }
            }
        }
        return sum
    }
}

/// A C read loop of the `CReference` target: `(slot, iterations) -> sum`.
typealias CReadLoop = (UnsafeMutablePointer<UnsafeMutableRawPointer?>, UInt64) -> UInt64
