import IOMMU
import Lockdep
import RCU
import XCTest

/// Divergence 5 (issue 16): `__iommu_group_remove_device` never touches `recovery_cnt`: a device
/// removed while blocked (reset or quarantine) leaves its group fenced with `-EBUSY`.
final class RecoveryCountTests: IOMMUTestCase {
    func testRemovingABlockedDeviceLeavesTheGroupFenced() throws {
        func scenario<Flavor: RCUFlavor>(_: Flavor.Type) throws {
            let r = makeRegistry(Flavor.self)
            let a = r.makeDevice(name: "devA", groupTag: "bridge")
            let b = r.makeDevice(name: "devB", groupTag: "bridge")
            try r.probeDevice(a)
            try r.probeDevice(b)
            let group = try XCTUnwrap(r.group(of: b))
            try r.resetPrepare(a)                       // the FLR never completes: a is hot-removed
            try r.releaseDevice(a)
            XCTAssertEqual(r.snapshot(group).recoveryCount, 1)
            XCTAssertThrowsError(try r.attachGroup(Domain(name: "user"), to: group)) {
                XCTAssertEqual($0 as? IOMMUError, .busy)
            }
            XCTAssertTrue(r.checkInvariants(quiescent: true).isEmpty, "I5 counts devices removed while blocked")
            try r.releaseDevice(b)
            rcuBarrier()
            expectClean(r)
        }
        try forEachRegistryFlavor { try scenario($0) }
    }

    func testRemovingAQuarantinedDeviceLeavesTheGroupFenced() throws {
        func scenario<Flavor: RCUFlavor>(_: Flavor.Type) throws {
            for design in [BrokenDeviceDesign.rcu, .devmutex] {
                let r = makeRegistry(Flavor.self, design: design)
                let a = r.makeDevice(name: "devA", groupTag: "bridge")
                let b = r.makeDevice(name: "devB", groupTag: "bridge")
                try r.probeDevice(a)
                try r.probeDevice(b)
                let group = try XCTUnwrap(r.group(of: b))
                let isr = TestThread(named: "isr", context: .hardirq) { XCTAssertTrue(r.reportBroken(a)) }
                XCTAssertTrue(isr.join())
                r.flushBrokenWork()
                try r.releaseDevice(a)
                XCTAssertEqual(r.snapshot(group).recoveryCount, 1, "\(design)")
                XCTAssertThrowsError(try r.attachPasid(Domain(name: "pasid"), to: b, pasid: 1)) {
                    XCTAssertEqual($0 as? IOMMUError, .busy)
                }
                XCTAssertTrue(r.checkInvariants(quiescent: true).isEmpty)
                try r.releaseDevice(b)
                rcuBarrier()
                expectClean(r)
            }
        }
        try forEachRegistryFlavor { try scenario($0) }
    }
}
