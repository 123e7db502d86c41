@_exported import RCUTestSupport
import Foundation
import RCU
import Synchronization

/// A stop flag shared by stress threads.
final class Flag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .releasing) }
    var isSet: Bool { value.load(ordering: .acquiring) }
}

/// Invariant violations found by stress threads.
final class Violations: Sendable {
    private let list = Locked<[String]>([])
    func record(_ message: String) { list.withLock { if $0.count < 20 { $0.append(message) } } }
    var all: [String] { list.withLock { $0 } }
}

/// How long each stress test runs: short by default so the target stays well
/// under a minute in debug and under TSan; 5 s each with `RCU_LONG_TESTS`.
var stressDuration: TimeInterval { longTests ? 5 : 0.3 }

/// A small, fast, seedable generator (SplitMix64) so model tests are reproducible.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Unique ids across threads.
final class IDSource: Sendable {
    private let next = Atomic<Int>(0)
    func make() -> Int { next.add(1, ordering: .relaxed).newValue }
}
