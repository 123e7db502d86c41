import XCTest
import Synchronization
@testable import Lockdep

/// Collects every report the validator produces while installed.
final class ReportCollector: Sendable {
    private let storage = Mutex<[LockdepReport]>([])

    var reports: [LockdepReport] { storage.withLock { $0 } }
    var kinds: [LockdepReport.Kind] { reports.map(\.kind) }

    func install() {
        Lockdep.reportMode = .custom { [self] report in storage.withLock { $0.append(report) } }
    }

    func clear() { storage.withLock { $0.removeAll() } }
}

/// Base class: fresh validator state and a collecting handler per test.
class LockdepTestCase: XCTestCase {
    let collector = ReportCollector()

    override func setUp() {
        super.setUp()
        Lockdep.resetForTesting()
        Lockdep.limits = LockdepLimits()
        collector.install()
    }

    override func tearDown() {
        Lockdep.resetForTesting()
        super.tearDown()
    }

    /// Asserts exactly one report of `kind` and returns it.
    @discardableResult
    func expectOne(_ kind: LockdepReport.Kind, file: StaticString = #filePath, line: UInt = #line) -> LockdepReport? {
        let reports = collector.reports
        XCTAssertEqual(reports.map(\.kind), [kind], reports.map(\.text).joined(separator: "\n"), file: file, line: line)
        return reports.first { $0.kind == kind }
    }

    func expectSilent(file: StaticString = #filePath, line: UInt = #line) {
        let reports = collector.reports
        XCTAssertTrue(reports.isEmpty, reports.map(\.text).joined(separator: "\n"), file: file, line: line)
    }

    /// Runs `body` on a new named thread and waits for it.
    func onThread(_ name: String, _ body: @escaping @Sendable () -> Void) {
        let thread = Thread {
            Lockdep.currentThreadName = name
            body()
        }
        let done = DispatchSemaphore(value: 0)
        let wrapped = Thread {
            Lockdep.currentThreadName = name
            body()
            done.signal()
        }
        _ = thread
        wrapped.start()
        done.wait()
    }
}
