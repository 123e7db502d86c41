import Foundation
import Synchronization
import TestSupport
import XCTest
import Lockdep

/// Session 20's adversarial pass over the report-delivery rehearsal that runs when the graph
/// is made (before any fork can copy the runtime's metadata locks held).
final class AdversarialSession20Tests: XCTestCase {
    /// Eight threads race the process's first Lockdep use, each installing a custom handler:
    /// the rehearsal reaches no handler and registers nothing, and the first real reports
    /// arrive as they would without it.
    func testRehearsalIsInvisibleToACustomHandlerInstalledFirst() throws {
        guard inFreshTestProcess else {
            let test = "LockdepTests.AdversarialSession20Tests/testRehearsalIsInvisibleToACustomHandlerInstalledFirst"
            return XCTAssertNil(failureOfFreshTestProcess(test, timeout: .seconds(60)))
        }
        let seen = Mutex<[LockdepReport]>([])
        let go = Atomic<Bool>(false)
        let threads = (0..<8).map { i in
            startThread(named: "first \(i)") {
                while !go.load(ordering: .acquiring) {}
                Lockdep.reportHandler = .custom { r in seen.withLock { $0.append(r) } }
            }
        }
        go.store(true, ordering: .releasing)
        threads.forEach { $0.wait() }
        XCTAssertEqual(seen.withLock { $0.map(\.title) }, [], "the rehearsal reached a handler")
        let size = Lockdep.graphSize
        XCTAssertEqual(size.classes, 0, "\(size)")
        XCTAssertEqual(size.dependencies, 0, "\(size)")
        let m = CheckedMutex(class: .unique("s20.m"))
        m.lock(); m.lock(); m.unlock(); m.unlock()
        let kinds = seen.withLock { $0.map(\.kind) }
        XCTAssertEqual(kinds.first, .recursiveLocking, "\(kinds)")
        XCTAssertFalse(seen.withLock { $0.contains { $0.title == "rehearsal" || $0.classes == ["rehearsal"] } })
    }
}
