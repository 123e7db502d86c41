@_exported import TestSupport
import Foundation
import IOMMU
import Lockdep
import RCU
import XCTest

/// Base class: fresh Lockdep state, a collecting handler, and registries shut down after each test.
class IOMMUTestCase: XCTestCase {
    let lockdep = LockdepReportCollector()
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
        Lockdep.reportMode = .trap
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

/// Waits for every queued call_rcu callback (the registry's deferred frees) to run.
func rcuBarrier() {
    RegistryRCU.barrier()
}
