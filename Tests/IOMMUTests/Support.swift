@_exported import TestSupport
import Foundation
import IOMMU
import Lockdep
import RCU
import XCTest

/// Base class: fresh Lockdep state, a collecting handler, and registries shut down after each test.
///
/// The scenarios run on every RCU flavor the registry is built on (``forEachRegistryFlavor(_:)``),
/// each flavor as if it were a test of its own; a failure names the flavor it happened on.
class IOMMUTestCase: XCTestCase {
    let lockdep = LockdepReportCollector()
    private var registryShutdowns: [() -> Void] = []
    /// The flavor ``forEachRegistryFlavor(_:)`` is running, for failure messages.
    private var currentFlavor: String?

    /// The flavors the registry's scenarios run on: memb (the default) and qsbr.
    static var registryFlavors: [any RCUFlavor.Type] { [RCUMemb.self, RCUQSBR.self] }

    override func setUp() {
        super.setUp()
        beginRun()
    }

    override func tearDown() {
        endRun()
        Lockdep.reportHandler = .trap
        super.tearDown()
    }

    private func beginRun() {
        Lockdep.resetForTesting()
        lockdep.install()
    }

    private func endRun() {
        for shutdown in registryShutdowns { shutdown() }
        registryShutdowns.removeAll()
        Lockdep.resetForTesting()
        lockdep.clear()
    }

    /// Runs `body` once per registry flavor, each after a fresh start: the previous flavor's
    /// registries shut down, Lockdep's state and the collected reports reset.
    func forEachRegistryFlavor(_ body: (any RCUFlavor.Type) throws -> Void) rethrows {
        for (index, flavor) in Self.registryFlavors.enumerated() {
            if index > 0 {
                endRun()
                beginRun()
            }
            currentFlavor = flavor.name
            defer { currentFlavor = nil }
            try body(flavor)
        }
    }

    override func recordFailure(withDescription description: String, inFile filePath: String, atLine lineNumber: Int, expected: Bool) {
        let flavor = currentFlavor.map { "[registry on \($0)] " } ?? ""
        super.recordFailure(withDescription: flavor + description, inFile: filePath, atLine: lineNumber, expected: expected)
    }

    func makeRegistry<Flavor: RCUFlavor>(
        _ flavor: Flavor.Type, design: BrokenDeviceDesign = .rcu, bugs: RegistryBugs = [],
        configure: (inout Registry<Flavor>.Configuration) -> Void = { _ in }, shutdownAfterTest: Bool = true
    ) -> Registry<Flavor> {
        var c = Registry<Flavor>.Configuration(design: design, bugs: bugs)
        configure(&c)
        let r = Registry(flavor: flavor, configuration: c)
        if shutdownAfterTest { registryShutdowns.append { r.shutdown() } }
        return r
    }

    /// A registry on the default flavor (memb), for the tests of its lifecycle.
    func makeRegistry(design: BrokenDeviceDesign = .rcu, shutdownAfterTest: Bool = true) -> Registry<RCUMemb> {
        makeRegistry(RCUMemb.self, design: design, shutdownAfterTest: shutdownAfterTest)
    }

    func expectNoLockdepReports(file: StaticString = #filePath, line: UInt = #line) {
        let reports = lockdep.reports
        XCTAssertTrue(reports.isEmpty, reports.map(\.text).joined(separator: "\n"), file: file, line: line)
    }

    func expectClean<Flavor>(_ r: Registry<Flavor>, file: StaticString = #filePath, line: UInt = #line) {
        expectNoLockdepReports(file: file, line: line)
        XCTAssertEqual(r.log.useAfterFreeTotal, 0, "\(r.log.useAfterFreeReports)", file: file, line: line)
        XCTAssertEqual(r.log.invariantViolationTotal, 0, "\(r.log.invariantViolations)", file: file, line: line)
        XCTAssertEqual(r.log.warningTotal, 0, "\(r.log.warnings)", file: file, line: line)
    }
}

/// Waits for every queued call_rcu callback (the registry's deferred frees, on either flavor) to run.
func rcuBarrier() {
    for flavor in IOMMUTestCase.registryFlavors { flavor.barrier() }
}
