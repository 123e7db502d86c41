import CURCUMemb
import Foundation
import Lockdep
import RCU
import Synchronization
import XCTest

/// Every flavor, for tests that run the same checks on each.
let allFlavors: [any RCUFlavor.Type] = [RCUMemb.self, RCUQSBR.self, RCUBulletproof.self, RCUMemoryBarrier.self]

/// An object that records its deinitialisation in a ledger, so tests can
/// count reclamation and check that nothing is freed twice or too early.
final class Tracked: Sendable {
    let id: Int
    let value: Int
    let ledger: Ledger

    init(id: Int, value: Int = 0, ledger: Ledger) {
        self.id = id
        self.value = value
        self.ledger = ledger
        ledger.created()
    }

    deinit { ledger.freed(id) }
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
}

/// Collects RCU misuse reports and Lockdep reports while installed; restores
/// both trapping handlers on `stop()`.
final class MisuseRecorder: Sendable {
    private let reports = Locked<[RCUMisuse]>([])
    private let lockdep = Locked<[LockdepReport]>([])

    init() {
        Lockdep.resetForTesting()
        RCUMisuse.setHandler(.custom { [self] misuse in self.record(misuse) })
        Lockdep.reportMode = .custom { [self] report in self.record(report) }
    }

    private func record(_ misuse: RCUMisuse) { reports.withLock { $0.append(misuse) } }
    private func record(_ report: LockdepReport) { lockdep.withLock { $0.append(report) } }

    var recorded: [RCUMisuse] { reports.withLock { $0 } }
    var lockdepReports: [LockdepReport] { lockdep.withLock { $0 } }

    func stop() {
        RCUMisuse.setHandler(.trap)
        Lockdep.reportMode = .trap
        Lockdep.resetForTesting()
    }
}

/// Runs `body` on a new named thread and waits for it to finish.
func onThread(named name: String, _ body: @escaping @Sendable () -> Void) {
    startThread(named: name, body).wait()
}

/// Starts `body` on a new named thread; the returned semaphore is signalled when it ends.
@discardableResult
func startThread(named name: String, _ body: @escaping @Sendable () -> Void) -> DispatchSemaphore {
    let done = DispatchSemaphore(value: 0)
    let thread = Thread {
        _ = curcu_set_current_thread_name(name)  // the pthread name, which diagnostics report
        body()
        done.signal()
    }
    thread.name = name
    thread.start()
    return done
}

/// State guarded by an `NSLock` (a pthread mutex, which ThreadSanitizer sees;
/// it cannot see the futex inside `Synchronization.Mutex` on Linux).
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
