import IOMMU
import Lockdep
import XCTest

/// The IOMMU usage example (an ISR reports a device broken; a reset recovers it), with its
/// counters checked (the README shows the same flow; scripts/check-readme-client.sh runs that one).
final class IOMMUUsageExampleTests: IOMMUTestCase {
    func testUsageExample() throws {
        let registry = Registry(configuration: .init(design: .rcu))
        defer { registry.shutdown() }
        let dev = registry.makeDevice(name: "0000:00:01.0", groupTag: "bridge0")
        try registry.probeDevice(dev)
        Lockdep.withContext(.hardirq) { _ = registry.reportBroken(dev) }   // an "ISR"
        registry.flushBrokenWork()                                          // quarantined
        XCTAssertEqual(registry.counters.quarantined.load(ordering: .relaxed), 1)
        try registry.resetPrepare(dev); registry.resetDone(dev)             // the FLR recovers it
        try registry.releaseDevice(dev)
        expectClean(registry)
    }
}
