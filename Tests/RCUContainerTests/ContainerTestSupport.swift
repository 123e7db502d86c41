@_exported import RCUTestSupport
import Foundation
import RCU
import Synchronization

/// Invariant violations found by stress threads.
final class Violations: Sendable {
    private let list = Locked<[String]>([])
    func record(_ message: String) { list.withLock { if $0.count < 20 { $0.append(message) } } }
    var all: [String] { list.withLock { $0 } }
}

/// How long each stress test runs: short by default so the target stays well
/// under a minute in debug and under TSan; 5 s each with `RCU_LONG_TESTS`.
var stressDuration: TimeInterval { longTests ? 5 : 0.3 }

/// Unique ids across threads.
final class IDSource: Sendable {
    private let next = Atomic<Int>(0)
    func make() -> Int { next.add(1, ordering: .relaxed).newValue }
}
