import RCU
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
            return try await group.reduce(0, max)
        }

        XCTAssertGreaterThanOrEqual(seen, 100)
        XCTAssertLessThanOrEqual(seen, 110)
        XCTAssertEqual(RCUMemb.read { store.current.withValue(in: $0) { $0.limit } }, 110)
    }
}
