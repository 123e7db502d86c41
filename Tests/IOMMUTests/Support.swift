import Foundation
import IOMMU
import Lockdep
import RCU
import XCTest

/// Collects Lockdep reports while installed.
final class LockdepCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var collected: [LockdepReport] = []
    var reports: [LockdepReport] { lock.lock(); defer { lock.unlock() }; return collected }
    var kinds: [LockdepReport.Kind] { reports.map(\.kind) }
    func install() {
        Lockdep.reportHandler = .custom { [self] report in
            lock.lock(); collected.append(report); lock.unlock()
        }
    }
    /// Waits (bounded) until a report of `kind` arrives.
    func waitFor(_ kind: LockdepReport.Kind, timeout: Double = 10) -> LockdepReport? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let r = reports.first(where: { $0.kind == kind }) { return r }
            usleep(1000)
        }
        return nil
    }
}

/// Base class: fresh Lockdep state, a collecting handler, and registries shut down after each test.
class IOMMUTestCase: XCTestCase {
    let lockdep = LockdepCollector()
    private var registries: [Registry] = []

    override func setUp() {
        super.setUp()
        Lockdep.resetForTesting()
        lockdep.install()
    }

    override func tearDown() {
        for r in registries { r.shutdown() }
        registries.removeAll()
        Lockdep.resetForTesting()
        Lockdep.reportHandler = .trap
        super.tearDown()
    }

    func makeRegistry(
        design: BrokenDeviceDesign = .rcu, bugs: RegistryBugs = [],
        configure: (inout Registry.Configuration) -> Void = { _ in }, shutdownAfterTest: Bool = true
    ) -> Registry {
        var c = Registry.Configuration(design: design, bugs: bugs)
        configure(&c)
        let r = Registry(configuration: c)
        if shutdownAfterTest { registries.append(r) }
        return r
    }

    func expectNoLockdepReports(file: StaticString = #filePath, line: UInt = #line) {
        let reports = lockdep.reports
        XCTAssertTrue(reports.isEmpty, reports.map(\.text).joined(separator: "\n"), file: file, line: line)
    }

    func expectClean(_ r: Registry, file: StaticString = #filePath, line: UInt = #line) {
        expectNoLockdepReports(file: file, line: line)
        XCTAssertEqual(r.log.useAfterFreeTotal, 0, "\(r.log.useAfterFreeReports)", file: file, line: line)
        XCTAssertEqual(r.log.invariantViolationTotal, 0, "\(r.log.invariantViolations)", file: file, line: line)
        XCTAssertEqual(r.log.warningTotal, 0, "\(r.log.warnings)", file: file, line: line)
    }
}

/// A named thread the test can join (bounded).
final class TestThread: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    init(_ name: String, hardirq: Bool = false, _ body: @escaping @Sendable () -> Void) {
        let t = Thread { [done] in
            Lockdep.currentThreadName = name
            if hardirq {
                Lockdep.withContext(.hardirq) { body() }
            } else {
                body()
            }
            done.signal()
        }
        t.start()
    }

    /// Waits for the thread to finish; `false` if it did not within `timeout` seconds (a hang).
    @discardableResult
    func join(timeout: Double = 20) -> Bool {
        done.wait(timeout: .now() + timeout) == .success
    }
}

/// A box to pass results out of threads.
final class Box<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: T
    init(_ value: T) { stored = value }
    var value: T {
        get { lock.lock(); defer { lock.unlock() }; return stored }
        set { lock.lock(); stored = newValue; lock.unlock() }
    }
}

/// Waits for every queued call_rcu callback (the registry's deferred frees) to run.
func rcuBarrier() {
    RegistryRCU.barrier()
}
