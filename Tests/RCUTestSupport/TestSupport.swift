// Test support shared by the RCU and container test targets: what needs RCU. The rest
// (threads, locks, the RNG, Lockdep report collection) is in TestSupport, re-exported here.
@_exported import TestSupport
import Foundation
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
    private let lockdep = LockdepReportCollector()

    public init() {
        Lockdep.resetForTesting()
        RCUMisuse.reportHandler = .custom { [self] misuse in self.record(misuse) }
        lockdep.install()
    }

    private func record(_ misuse: RCUMisuse) { reports.withLock { $0.append(misuse) } }

    public var recorded: [RCUMisuse] { reports.withLock { $0 } }
    public var kinds: [RCUMisuse.Kind] { recorded.map(\.kind) }
    public var lockdepReports: [LockdepReport] { lockdep.reports }

    public func stop() {
        RCUMisuse.reportHandler = .trap
        Lockdep.reportHandler = .trap
        Lockdep.resetForTesting()
    }
}

/// A thread inside a read section of `F` from `init` until `release()`: it holds up `F`'s
/// grace periods meanwhile. `inside` runs in the section first (to load what it protects).
public final class HeldReader<F: RCUFlavor>: Sendable {
    private let leave = DispatchSemaphore(value: 0)
    private let thread: TestThread

    public init(
        named name: String? = nil, inside: @escaping @Sendable (borrowing RCUReadSection<F>) -> Void = { _ in }
    ) {
        let entered = DispatchSemaphore(value: 0)
        let leave = self.leave
        thread = startThread(named: name ?? "held-reader-\(F.name)") {
            F.read { section in
                inside(section)
                entered.signal()
                leave.wait()
            }
        }
        entered.wait()
    }

    /// Lets the reader leave its section and waits until its thread has ended.
    public func release() {
        leave.signal()
        thread.wait()
    }
}

/// A reader that holds up memb grace periods until the backlog reaches a mark (at most
/// 10 s): in a slow build (ThreadSanitizer's) the worker could otherwise keep pace with a
/// storm's writers, and nothing would be throttled.
public final class GracePeriodHold: Sendable {
    private let reader = HeldReader<RCUMemb>(named: "gp-hold")

    public init() {}

    public func end(whenBacklogReaches mark: Int) {
        let deadline = ContinuousClock.now + .seconds(10)
        while RCUMemb.pendingCallbacks < mark, ContinuousClock.now < deadline { usleep(1_000) }
        reader.release()
    }
}

/// The largest backlog of a flavor (memb unless told) seen by a sampling thread.
public final class BacklogPeak: Sendable {
    private let peak = Atomic<Int>(0)
    private let running = Atomic<Bool>(true)
    private let pendingCallbacks: @Sendable () -> Int

    public init<F: RCUFlavor>(of _: F.Type) { pendingCallbacks = { F.pendingCallbacks } }

    public convenience init() { self.init(of: RCUMemb.self) }

    public func start() -> TestThread {
        startThread(named: "backlog-peak") { [self] in
            while running.load(ordering: .relaxed) {
                let pending = pendingCallbacks()
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
