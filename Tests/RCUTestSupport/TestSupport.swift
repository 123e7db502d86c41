// Test support shared by the RCU and container test targets.
import CURCUCommon
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

/// State guarded by an `NSLock` (a pthread mutex, which ThreadSanitizer sees;
/// it cannot see the futex inside `Synchronization.Mutex` on Linux).
public final class Locked<State>: @unchecked Sendable {
    private let lock = NSLock()
    private var state: State
    public init(_ state: State) { self.state = state }
    public func withLock<Result>(_ body: (inout State) throws -> Result) rethrows -> Result {
        lock.lock()
        defer { lock.unlock() }
        return try body(&state)
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

/// Runs `body` on a new named thread and waits for it to finish.
public func onThread(named name: String, _ body: @escaping @Sendable () -> Void) {
    startThread(named: name, body).wait()
}

/// Starts `body` on a new named thread; the returned semaphore is signalled when it ends.
@discardableResult
public func startThread(named name: String, _ body: @escaping @Sendable () -> Void) -> DispatchSemaphore {
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

/// A long-test switch: `RCU_LONG_TESTS=1 swift test`.
public var longTests: Bool { ProcessInfo.processInfo.environment["RCU_LONG_TESTS"] != nil }

/// Tests that need a process of their own (a fork, a deliberate hang or trap) run the
/// test binary again, filtered to themselves, with a marker in the environment.
public enum IsolatedTest {
    private static let marker = "RCU_ISOLATED_TEST"

    /// Whether this process is such a re-run.
    public static var isChild: Bool { ProcessInfo.processInfo.environment[marker] != nil }

    /// Runs the test `id` ("Target.Class/testName") in a fresh test process with
    /// `environment` added, and returns how it ended and what it printed.
    public static func run(
        _ id: String, environment: [String: String] = [:]
    ) throws -> (reason: Process.TerminationReason, status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
        process.arguments = [id]
        process.environment = ProcessInfo.processInfo.environment
            .merging(environment) { $1 }
            .merging([marker: "1"]) { $1 }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationReason, process.terminationStatus, text)
    }
}

/// A reader that holds up memb grace periods until the backlog reaches a mark (at most
/// 10 s): in a slow build (ThreadSanitizer's) the worker could otherwise keep pace with a
/// storm's writers, and nothing would be throttled.
public final class GracePeriodHold: Sendable {
    private let release = DispatchSemaphore(value: 0)
    private let reader: DispatchSemaphore

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

    public func start() -> DispatchSemaphore {
        startThread(named: "backlog-peak") { [self] in
            while running.load(ordering: .relaxed) {
                let pending = RCUMemb.pendingCallbacks
                if pending > peak.load(ordering: .relaxed) { peak.store(pending, ordering: .relaxed) }
                usleep(100)
            }
        }
    }

    public func stop(_ sampler: DispatchSemaphore) {
        running.store(false, ordering: .relaxed)
        sampler.wait()
    }

    public var value: Int { peak.load(ordering: .relaxed) }
}
