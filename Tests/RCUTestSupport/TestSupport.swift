// Test support shared by the RCU and container test targets: what needs RCU. The rest
// (threads, locks, the RNG, Lockdep report collection) is in TestSupport, re-exported here.
@_exported import TestSupport
public import Foundation
public import Lockdep
public import RCU
import Synchronization

/// An object that records its deinitialisation in a ledger and poisons itself,
/// so tests can count reclamation, catch double frees, and tell a freed
/// element from a live one.
public final class Tracked: Sendable {
    static let alive = 0x5EED_A11E
    static let dead = 0xDEAD_BEEF

    public let id: Int
    public let value: Int
    public let key: Int
    public let ledger: Ledger
    private let magic = Atomic<Int>(Tracked.alive)

    public init(id: Int, value: Int = 0, key: Int = 0, ledger: Ledger) {
        self.id = id
        self.value = value
        self.key = key
        self.ledger = ledger
        ledger.created()
    }

    deinit {
        magic.store(Tracked.dead, ordering: .relaxed)
        ledger.freed(id)
    }

    /// False once deinit has run (reading a freed element is also caught by ASan).
    public var isAlive: Bool { magic.load(ordering: .relaxed) == Tracked.alive }
}

/// Counts creations and frees; a second free of the same id is recorded as an error.
public final class Ledger: Sendable {
    private struct State {
        var created = 0
        var freed = Set<Int>()
        var doubleFrees = 0
    }
    private let state = Locked(State())

    public init() {}

    public func created() { state.withLock { $0.created += 1 } }
    public func freed(_ id: Int) {
        state.withLock { if !$0.freed.insert(id).inserted { $0.doubleFrees += 1 } }
    }
    public func isFreed(_ id: Int) -> Bool { state.withLock { $0.freed.contains(id) } }
    public var freedCount: Int { state.withLock { $0.freed.count } }
    public var createdCount: Int { state.withLock { $0.created } }
    public var doubleFrees: Int { state.withLock { $0.doubleFrees } }

    /// Waits (up to `timeout` seconds) until `count` elements have been freed.
    public func waitForFreed(_ count: Int, timeout: Double = 10) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while freedCount < count {
            if Date() > deadline { return false }
            usleep(1000)
        }
        return true
    }
}

/// Collects RCU misuse reports and Lockdep reports while installed; restores
/// both trapping handlers on `stop()`.
public final class MisuseRecorder: Sendable {
    private let reports = Locked<[RCUMisuse]>([])
    private let lockdep = Locked<[LockdepReport]>([])

    public init() {
        Lockdep.resetForTesting()
        RCUMisuse.setHandler(.custom { [self] misuse in self.record(misuse) })
        Lockdep.reportMode = .custom { [self] report in self.record(report) }
    }

    private func record(_ misuse: RCUMisuse) { reports.withLock { $0.append(misuse) } }
    private func record(_ report: LockdepReport) { lockdep.withLock { $0.append(report) } }

    public var recorded: [RCUMisuse] { reports.withLock { $0 } }
    public var kinds: [RCUMisuse.Kind] { recorded.map(\.kind) }
    public var lockdepReports: [LockdepReport] { lockdep.withLock { $0 } }

    public func stop() {
        RCUMisuse.setHandler(.trap)
        Lockdep.reportMode = .trap
        Lockdep.resetForTesting()
    }
}

/// A reader that holds up memb grace periods until the backlog reaches a mark (at most
/// 10 s): in a slow build (ThreadSanitizer's) the worker could otherwise keep pace with a
/// storm's writers, and nothing would be throttled.
public final class GracePeriodHold: Sendable {
    private let release = DispatchSemaphore(value: 0)
    private let reader: TestThread

    public init() {
        let entered = DispatchSemaphore(value: 0)
        let release = self.release
        reader = startThread(named: "gp-hold") {
            RCUMemb.read { _ in
                entered.signal()
                release.wait()
            }
        }
        entered.wait()
    }

    public func end(whenBacklogReaches mark: Int) {
        let deadline = ContinuousClock.now + .seconds(10)
        while RCUMemb.pendingCallbacks < mark, ContinuousClock.now < deadline { usleep(1_000) }
        release.signal()
        reader.wait()
    }
}

/// The largest memb backlog seen by a sampling thread.
public final class BacklogPeak: Sendable {
    private let peak = Atomic<Int>(0)
    private let running = Atomic<Bool>(true)

    public init() {}

    public func start() -> TestThread {
        startThread(named: "backlog-peak") { [self] in
            while running.load(ordering: .relaxed) {
                let pending = RCUMemb.pendingCallbacks
                if pending > peak.load(ordering: .relaxed) { peak.store(pending, ordering: .relaxed) }
                usleep(100)
            }
        }
    }

    public func stop(_ sampler: TestThread) {
        running.store(false, ordering: .relaxed)
        sampler.wait()
    }

    public var value: Int { peak.load(ordering: .relaxed) }
}
