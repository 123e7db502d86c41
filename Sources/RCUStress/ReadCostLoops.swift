import CReference
import CURCUMemb
import CURCUQSBR
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
    /// object's value: `Flavor.read { s in ptr.withValue(in: s) { sum &+= $0!.value } }`.
    /// - Returns: The sum of the values read.
    @inline(never)
    static func swiftReadLoop<Flavor: RCUFlavor>(
        _ pointer: borrowing RCUPointer<BenchNode, Flavor>, iterations: Int
    ) -> Int {
        var sum = 0
        for _ in 0..<iterations {
            Flavor.read { section in
                pointer.withValue(in: section) { sum &+= $0!.value }
            }
        }
        return sum
    }

    /// The qsbr read loop of a thread that registered once: what an
    /// `RCUQSBR.Reader` read section compiles to (no registration check, no
    /// nesting depth), written with the shim's primitives because that type
    /// is not in the RCU module yet. `slot` holds an `Unmanaged<BenchNode>`.
    /// The caller registers the thread (`RCUQSBR.registerThread()`).
    @inline(never)
    static func swiftQSBRRegisteredReadLoop(
        _ slot: UnsafeMutablePointer<UnsafeMutableRawPointer?>, iterations: Int
    ) -> Int {
        var sum = 0
        for _ in 0..<iterations {
            curcu_qsbr_read_lock_registered()
            let raw = curcu_pointer_load(slot)!
            Unmanaged<BenchNode>.fromOpaque(raw)._withUnsafeGuaranteedRef { sum &+= $0.value }
            curcu_qsbr_read_unlock()
        }
        return sum
    }
}

/// A C read loop of the `CReference` target: `(slot, iterations) -> sum`.
typealias CReadLoop = (UnsafeMutablePointer<UnsafeMutableRawPointer?>, UInt64) -> UInt64
