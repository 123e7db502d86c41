import Lockdep
import RCU
import Synchronization
import XCTest

/// The publish-and-read usage example.
final class UsageExampleTests: XCTestCase {
    final class Config: Sendable {
        let limit: Int
        init(limit: Int) { self.limit = limit }
    }

    func testPublishingAndReadingAConfig() {
        let config = RCUPointer<Config, RCUMemb>(Config(limit: 100))

        // Readers, on any thread: no lock, no atomic RMW, no retain/release.
        let limit = RCUMemb.read { section in
            config.withValue(in: section) { $0.limit } ?? 0
        }

        // A writer publishes a new version; the old one is freed after a grace period.
        config.replace(with: Config(limit: 200))

        XCTAssertEqual(limit, 100)
        XCTAssertEqual(RCUMemb.read { config.withValue(in: $0) { $0.limit } }, 200)
    }
}

/// The hot-loop usage example (a QSBR reader scope).
final class ReaderScopeExampleTests: XCTestCase {
    final class Table: Sendable {
        let entries: Int
        init(entries: Int) { self.entries = entries }
    }

    func testQSBRReaderScope() {
        let table = RCUPointer<Table, RCUQSBR>(Table(entries: 3))
        var seen = 0
        var rounds = 0
        var running: Bool { rounds < 1000 }
        func use(_ table: Table) { seen += table.entries }

        RCUQSBR.withReader { reader in                // registered and online until it returns
            while running {
                reader.read { section in table.withValue(in: section) { use($0) } }
                reader.quiescentState()               // QSBR's side of the bargain
                rounds += 1
            }
        }

        XCTAssertEqual(seen, 3000)
        XCTAssertFalse(RCUQSBR.isOnline, "the scope took the thread offline again")
    }
}

/// The async usage example (an actor publishing while tasks read), as in the "RCU in async code" article.
final class AsyncExampleTests: XCTestCase {
    final class Config: Sendable {
        let limit: Int
        init(limit: Int) { self.limit = limit }
    }

    /// Publishes configurations; readers read `current` from any task without the actor.
    actor ConfigStore {
        nonisolated let current = RCUPointer<Config, RCUMemb>(Config(limit: 100))

        /// Publishes `limit` and frees the previous version once no reader can hold it,
        /// suspending this call (not a thread) for the grace period.
        func publish(limit: Int) async throws {
            try await current.replaceAndSynchronize(with: Config(limit: limit))
        }
    }

    /// On the main actor, as the article's `main.swift` runs: there `group.reduce(0, max)` does
    /// not compile ("sending 'group' risks causing data races"), so the results are collected
    /// with `for try await`, as the article does.
    @MainActor
    func testActorPublishesWhileTasksRead() async throws {
        let store = ConfigStore()
        let seen = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<4 {
                group.addTask {                                  // readers, on any pool thread
                    var largest = 0
                    for _ in 0..<1_000 {
                        let limit = RCUMemb.read { section in
                            store.current.withValue(in: section) { $0.limit } ?? 0
                        }
                        largest = max(largest, limit)
                        await Task.yield()                       // between sections, never inside one
                    }
                    return largest
                }
            }
            group.addTask {                                      // the writer
                for limit in 101...110 { try await store.publish(limit: limit) }
                return 0
            }
            var largest = 0
            for try await limit in group { largest = max(largest, limit) }
            return largest
        }

        XCTAssertGreaterThanOrEqual(seen, 100)
        XCTAssertLessThanOrEqual(seen, 110)
        XCTAssertEqual(RCUMemb.read { store.current.withValue(in: $0) { $0.limit } }, 110)
    }
}

/// The "Where reclamation runs" example of Getting Started: what a retire closure may do on the
/// call_rcu worker (Lockdep's softirq context) instead of taking a sleeping lock.
final class ReclamationContextExampleTests: XCTestCase {
    final class Stats: Sendable { let reclaimed = Atomic<Int>(0) }
    /// `evictions` is guarded by `spin`.
    final class Cache: @unchecked Sendable {
        let spin = CheckedSpinLock(class: .unique("cache->spin"))
        var evictions = 0
    }
    final class Store: Sendable { let mutex = CheckedMutex(class: .unique("store->mutex")) }

    private var recorder: MisuseRecorder!

    override func setUpWithError() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        recorder = MisuseRecorder()
    }

    override func tearDown() { recorder?.stop() }

    func testAtomicSpinLockWithSoftirqsOffAndHandOffAreClean() {
        let stats = Stats(), cache = Cache(), store = Store()
        let queue = WorkQueue("cleanup", threads: 1)
        defer { queue.shutdown() }
        let cleanedUnderMutex = Locked(false)
        let cleanup = WorkItem("cleanup", on: queue) { store.mutex.withLock { cleanedUnderMutex.value = true } }

        onThread(named: "updater") {
            RCUMemb.retire { _ = stats.reclaimed.add(1, ordering: .relaxed) }   // an atomic
            RCUMemb.retire { cache.spin.withLock { cache.evictions += 1 } }       // a spin lock, and elsewhere:
            Lockdep.withInterruptsDisabled(.softirq) { cache.spin.withLock { cache.evictions = 0 } }
            RCUMemb.retire { _ = cleanup.queue() }   // hand off: the WorkItem's callback may take a mutex
            RCUMemb.barrier()
        }
        cleanup.flush()

        XCTAssertEqual(stats.reclaimed.load(ordering: .relaxed), 1)
        XCTAssertTrue(cleanedUnderMutex.value)
        XCTAssertEqual(recorder.lockdepReports.map(\.kind), [], recorder.lockdepReports.map(\.text).joined(separator: "\n"))
    }

    /// Why the process side disables softirqs: without it the spin lock is taken both in
    /// softirq context and with softirqs enabled.
    func testSpinLockTakenWithSoftirqsOnIsAnInconsistentState() {
        let cache = Cache()
        onThread(named: "updater") {
            cache.spin.withLock { cache.evictions = 0 }
            RCUMemb.retire { cache.spin.withLock { cache.evictions += 1 } }
            RCUMemb.barrier()
        }
        XCTAssertEqual(recorder.lockdepReports.map(\.kind), [.inconsistentLockState])
    }
}
