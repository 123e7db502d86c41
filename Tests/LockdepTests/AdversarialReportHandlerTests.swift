import Foundation
import XCTest
@testable import Lockdep

/// Hostile report handlers: a handler that swaps the handler and misuses a lock itself, while
/// other threads swap handlers and report concurrently.
final class AdversarialReportHandlerTests: LockdepTestCase {
    /// How deep the calling thread is in report handlers (a handler called from a handler is depth 2).
    static func handlerDepth(_ change: Int) -> Int {
        let dictionary = Thread.current.threadDictionary
        let depth = (dictionary["adv.depth"] as? Int ?? 0) + change
        dictionary["adv.depth"] = depth
        return depth
    }

    func testHandlerThatSwapsHandlersAndMisusesWhileThreadsReport() {
        let handled = Counter()
        let deepest = Locked(0)
        let nestedMisuse = CheckedRWLock(class: .unique("adv.nested"))
        // Both handlers: count, install the other one, then misuse a lock from inside the handler.
        final class Handlers: @unchecked Sendable {
            var a: Lockdep.ReportHandler = .trap
            var b: Lockdep.ReportHandler = .trap
        }
        let handlers = Handlers()
        func makeHandler(next: @escaping @Sendable () -> Lockdep.ReportHandler) -> Lockdep.ReportHandler {
            .custom { report in
                let depth = Self.handlerDepth(1)
                defer { _ = Self.handlerDepth(-1) }
                deepest.withLock { $0 = max($0, depth) }
                guard depth == 1 else { return }   // a nested call is the break; do not recurse further
                XCTAssertEqual(report.kind, .unlockNotHeld)
                handled.increment()
                Lockdep.reportHandler = next()
                nestedMisuse.unlock()              // a misuse inside the handler
            }
        }
        handlers.a = makeHandler { handlers.b }
        handlers.b = makeHandler { handlers.a }
        Lockdep.reportHandler = handlers.a

        let threads = 4, misusesPerThread = 200
        let group = DispatchGroup()
        for t in 0..<threads {
            group.enter()
            Thread {
                let rw = CheckedRWLock(class: .unique("adv.outer.\(t)"))
                for _ in 0..<misusesPerThread { rw.unlock() }
                group.leave()
            }.start()
        }
        group.enter()
        Thread {
            for i in 0..<500 { Lockdep.reportHandler = i.isMultiple(of: 2) ? handlers.a : handlers.b }
            group.leave()
        }.start()
        XCTAssertEqual(group.wait(timeout: .now() + 60), .success, "a reporting thread hung")
        XCTAssertEqual(deepest.value, 1, "a misuse inside a report handler called a handler again")
        // Every outer report reached one handler once, whichever was installed at the time.
        XCTAssertEqual(handled.value, threads * misusesPerThread)
        Lockdep.reportHandler = .trap
    }
}
