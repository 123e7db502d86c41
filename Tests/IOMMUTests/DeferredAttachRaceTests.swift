import IOMMU
import Lockdep
import RCU
import XCTest

/// `iommu_deferred_attach()` reads `attach_deferred` under `group->mutex`, which clears it: the
/// first DMA maps of two CPUs may race (ThreadSanitizer reports a data race if it is read outside).
final class DeferredAttachRaceTests: IOMMUTestCase {
    func testConcurrentFirstMapsAttachOnce() throws {
        func scenario<Flavor: RCUFlavor>(_: Flavor.Type) throws {
            let r = makeRegistry(Flavor.self)
            for round in 0..<50 {
                let dev = r.makeDevice(name: "kdump\(round)")
                dev.attachDeferredByDriver.store(true, ordering: .relaxed)
                try r.probeDevice(dev)
                let target = Domain(name: "dma\(round)")
                let errors = Locked<[IOMMUError]>([])
                let cpus = (0..<2).map { cpu in
                    TestThread(named: "cpu\(cpu)") {
                        do throws(IOMMUError) { try r.deferredAttach(dev, to: target) } catch {
                            errors.value.append(error)
                        }
                    }
                }
                for cpu in cpus { XCTAssertTrue(cpu.join()) }
                XCTAssertEqual(errors.value, [])
                XCTAssertTrue(r.snapshot(of: dev)?.members.first?.attachedDomain === target)
                try r.releaseDevice(dev)
            }
            rcuBarrier()
            expectClean(r)
        }
        try forEachRegistryFlavor { try scenario($0) }
    }
}
