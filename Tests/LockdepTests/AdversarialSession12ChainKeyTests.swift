import Foundation
import XCTest
@testable import Lockdep

/// The chain key of session 12 (`((h + x) * K | 1).byteSwapped`) against chains built to
/// collide: a chain whose key equals one validated before is treated as validated, on the fast
/// path and the full path alike (both look the key up), so a collision is a dependency never
/// recorded and a deadlock never reported.
final class AdversarialSession12ChainKeyTests: LockdepTestCase {
    /// A multiply carries a difference only upwards: two elements that differ only in their
    /// high fields (nested, flags, irq state, mode) gave products that differ only in their
    /// high bytes, which the byte swap moved into the low bytes of the next key. The next
    /// element's class and subclass (its low 32 bits) then cancelled the difference: a lock
    /// taken nested and the same lock taken plainly, followed by two classes a few
    /// registrations apart, made one key. Each such change must leave the next key at least
    /// 2^32 away, out of any class's reach.
    func testAHighFieldChangeCannotBeCancelledByTheNextClass() {
        var rng = SplitMix64(seed: 0x5E55_1012)
        var cancellable: [String] = []
        let changes: [(String, UInt64)] = [("nested", 1 << 56)]
            + (0..<7).map { ("flag bit \($0)", UInt64(1) << (48 + $0)) }
            + (0..<5).map { ("irq bit \($0)", UInt64(1) << (40 + $0)) }
            + (1..<4).map { ("mode +\($0)", UInt64($0) << 32) }
        for _ in 0..<2_000 {
            let h = rng.next() | 1
            // A realistic element: a class below 2^20, a subclass, mode, irq state and flags.
            let x = Engine.element(node: UInt32(truncatingIfNeeded: rng.next() & 0x7F_FFFF), mode: 0,
                                   irq: 0, flags: 0, nested: false)
            for (name, change) in changes {
                let difference = Engine.mix(h, x) &- Engine.mix(h, x &+ change)
                // Within (-2^32, 2^32): a next element's class and subclass can make up for it.
                if difference &+ (1 << 32) < (1 << 33), cancellable.count < 10 {
                    cancellable.append("\(name): keys \(Int64(bitPattern: difference)) apart after h=\(h), x=\(x)")
                }
            }
        }
        XCTAssertTrue(cancellable.isEmpty, cancellable.joined(separator: "\n"))
    }

    /// The collision through the public API: a chain taken once with the middle lock plain,
    /// then with it nested under the outer one, followed by each class of a range and each
    /// subclass. Every one of those chains is new and must be validated (recorded), and the
    /// reverse order taken on another thread must be reported as a deadlock. With the
    /// byte-swapped key one of them matched the first chain: never recorded, its deadlock
    /// never reported.
    func testANestedAcquireDoesNotAliasAnotherChain() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let outer = CheckedMutex(class: .unique("adv12.key.outer"))
        let middle = CheckedMutex(class: .unique("adv12.key.middle"))
        // The node difference a nested bit made was -21 or +235: classes on both sides of `first`.
        let candidates = (0..<40).map { CheckedMutex(class: .unique("adv12.key.candidate\($0)")) }
        let first = candidates[8]
        outer.lock(); middle.lock(); first.lock()
        first.unlock(); middle.unlock(); outer.unlock()
        expectSilent()

        var unrecorded: [String] = []
        for (i, candidate) in candidates.enumerated() {
            for subclass in 0..<8 {
                let before = Lockdep.graphSize.chains
                outer.lock()
                middle.lock(nestedUnder: outer)
                candidate.lock(subclass: subclass)
                candidate.unlock(); middle.unlock(); outer.unlock()
                // [outer, middle nested] is new the first time too.
                let expected = i == 0 && subclass == 0 ? 2 : 1
                if Lockdep.graphSize.chains - before != expected {
                    unrecorded.append("candidate\(i)/\(subclass)")
                }
            }
        }
        XCTAssertEqual(unrecorded, [], "chains taken but never validated (their key matched another chain's)")
        expectSilent()

        // The reverse order on another thread: each candidate class (subclass 3, where the
        // colliding one sat) then the middle lock is a deadlock with the nested chain.
        let other = StepThread("adv12.key.reverse")
        for candidate in candidates {
            other.run {
                candidate.lock(subclass: 3)
                middle.lock()
                middle.unlock(); candidate.unlock()
            }
        }
        other.finish()
        let reported = collector.reports.filter { $0.kind == .circularDependency }
        XCTAssertEqual(reported.count, candidates.count, collector.reports.map(\.title).joined(separator: "\n"))
    }
}
