import CURCUMemb
import Foundation
import RCU
import Synchronization
import XCTest

/// An element that records its deinitialisation in a ledger and poisons
/// itself, so readers can tell a freed element from a live one.
final class Tracked: Sendable {
    static let alive = 0x5EED_A11E
    static let dead = 0xDEAD_BEEF

    let id: Int
    let key: Int
    let ledger: Ledger
    private let magic = Atomic<Int>(Tracked.alive)

    init(id: Int, key: Int = 0, ledger: Ledger) {
        self.id = id
        self.key = key
        self.ledger = ledger
        ledger.created()
    }

    deinit {
        magic.store(Tracked.dead, ordering: .relaxed)
        ledger.freed(id)
    }

    /// False once deinit has run (reading a freed element is also caught by ASan).
    var isAlive: Bool { magic.load(ordering: .relaxed) == Tracked.alive }
}

/// Counts creations and frees; a second free of the same id is recorded as an error.
final class Ledger: Sendable {
    private struct State {
        var created = 0
        var freed = Set<Int>()
        var doubleFrees = 0
    }
    private let state = Locked(State())

    func created() { state.withLock { $0.created += 1 } }
    func freed(_ id: Int) {
        state.withLock { if !$0.freed.insert(id).inserted { $0.doubleFrees += 1 } }
    }
    func isFreed(_ id: Int) -> Bool { state.withLock { $0.freed.contains(id) } }
    var freedCount: Int { state.withLock { $0.freed.count } }
    var createdCount: Int { state.withLock { $0.created } }
    var doubleFrees: Int { state.withLock { $0.doubleFrees } }

    /// Waits (up to `timeout` seconds) until `count` elements have been freed.
    func waitForFreed(_ count: Int, timeout: Double = 10) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while freedCount < count {
            if Date() > deadline { return false }
            usleep(1000)
        }
        return true
    }
}

/// State guarded by an `NSLock` (a pthread mutex, which ThreadSanitizer sees).
final class Locked<State>: @unchecked Sendable {
    private let lock = NSLock()
    private var state: State
    init(_ state: State) { self.state = state }
    func withLock<Result>(_ body: (inout State) throws -> Result) rethrows -> Result {
        lock.lock()
        defer { lock.unlock() }
        return try body(&state)
    }
}

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

/// Collects misuse reports while installed; restores the trapping handler on `stop()`.
final class MisuseRecorder: Sendable {
    private let reports = Locked<[RCUMisuse]>([])

    init() {
        RCUMisuse.setHandler(.custom { [self] misuse in self.record(misuse) })
    }

    private func record(_ misuse: RCUMisuse) { reports.withLock { $0.append(misuse) } }

    var recorded: [RCUMisuse] { reports.withLock { $0 } }
    var kinds: [RCUMisuse.Kind] { recorded.map(\.kind) }

    func stop() { RCUMisuse.setHandler(.trap) }
}

/// Starts `body` on a new named thread; the returned semaphore is signalled when it ends.
@discardableResult
func startThread(named name: String, _ body: @escaping @Sendable () -> Void) -> DispatchSemaphore {
    let done = DispatchSemaphore(value: 0)
    let thread = Thread {
        _ = curcu_set_current_thread_name(name)
        body()
        done.signal()
    }
    thread.name = name
    thread.start()
    return done
}

/// A long-test switch: `RCU_LONG_TESTS=1 swift test`.
var longTests: Bool { ProcessInfo.processInfo.environment["RCU_LONG_TESTS"] != nil }

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
