import IOMMU
import Lockdep
import RCU
import XCTest

/// Divergence 2 (issue 16): `iommu_init_device` drops `iommu_probe_device_lock` around the
/// bus's `dma_configure()` (which probes the device itself through `of_iommu_configure`), then
/// relocks and revalidates: `!dev->iommu || dev->iommu_group` means another instance finished
/// (or failed) the job, and the probe returns `-ENODEV`.
final class ProbeLockDropTests: IOMMUTestCase {
    func testOtherProbesRunWhileAFirmwareDeviceIsInDmaConfigure() throws {
        func scenario<Flavor: RCUFlavor>(_: Flavor.Type) throws {
            let r = makeRegistry(Flavor.self)
            let fw = r.makeDevice(name: "platform:dma0", groupTag: "fw")
            fw.firmwareDescribed.store(true, ordering: .relaxed)
            let other = r.makeDevice(name: "0000:00:02.0")
            let dropped = r.hooks.arm(.probeInDmaConfigure)
            let result = Locked<IOMMUError?>(nil)
            let notifier = TestThread(named: "bus-notifier") {
                do throws(IOMMUError) { try r.probeDevice(fw) } catch { result.value = error }
            }
            XCTAssertTrue(dropped.waitUntilReached(), "the probe lock is dropped around dma_configure")
            let prober = TestThread(named: "prober") {
                do throws(IOMMUError) { try r.probeDevice(other) } catch { XCTFail("\(error)") }
            }
            XCTAssertTrue(prober.join(timeout: 10), "another probe is not held up by the dropped lock")
            dropped.release()
            XCTAssertTrue(notifier.join())
            // dma_configure's own probe (of_iommu_configure -> iommu_probe_device) did the job.
            XCTAssertEqual(result.value, .noDevice)
            XCTAssertEqual(r.counters.probesFinishedElsewhere.load(ordering: .relaxed), 1)
            XCTAssertEqual(r.snapshot(of: fw)?.members.map(\.device.name), ["platform:dma0"])
            XCTAssertTrue(r.checkInvariants(quiescent: true).isEmpty)
            try r.releaseDevice(fw)
            try r.releaseDevice(other)
            rcuBarrier()
            expectClean(r)
        }
        try forEachRegistryFlavor { try scenario($0) }
    }

    /// Two probes of the same device race through the dropped-lock window: the second's nested
    /// probe finishes the job, both outer probes revalidate and return `-ENODEV`, one gdev (I2).
    func testRacingProbeOfTheSameDeviceFinishesTheJob() throws {
        func scenario<Flavor: RCUFlavor>(_: Flavor.Type) throws {
            let r = makeRegistry(Flavor.self)
            let fw = r.makeDevice(name: "platform:dma0")
            fw.firmwareDescribed.store(true, ordering: .relaxed)
            let dropped = r.hooks.arm(.probeInDmaConfigure)
            let first = Locked<IOMMUError?>(nil)
            let notifier = TestThread(named: "bus-notifier") {
                do throws(IOMMUError) { try r.probeDevice(fw) } catch { first.value = error }
            }
            XCTAssertTrue(dropped.waitUntilReached())
            XCTAssertThrowsError(try r.probeDevice(fw)) { XCTAssertEqual($0 as? IOMMUError, .noDevice) }
            XCTAssertNotNil(r.group(of: fw))
            dropped.release()
            XCTAssertTrue(notifier.join())
            XCTAssertEqual(first.value, .noDevice)
            XCTAssertEqual(r.counters.probesFinishedElsewhere.load(ordering: .relaxed), 2)
            XCTAssertEqual(r.snapshot(of: fw)?.members.count, 1)
            XCTAssertTrue(r.checkInvariants(quiescent: true).isEmpty)
            try r.releaseDevice(fw)
            rcuBarrier()
            expectClean(r)
        }
        try forEachRegistryFlavor { try scenario($0) }
    }

    /// A bound driver means dma_configure already ran: really_probe's probe keeps the lock.
    func testDriverBoundProbeKeepsTheLock() throws {
        func scenario<Flavor: RCUFlavor>(_: Flavor.Type) throws {
            let r = makeRegistry(Flavor.self)
            let fw = r.makeDevice(name: "platform:dma0")
            fw.firmwareDescribed.store(true, ordering: .relaxed)
            let dropped = r.hooks.arm(.probeInDmaConfigure)
            try r.driverProbe(fw) { () throws(IOMMUError) in try r.probeDevice(fw) }
            XCTAssertEqual(dropped.reachedCount, 0)
            dropped.release()
            XCTAssertNotNil(r.group(of: fw))
            try r.releaseDevice(fw)
            rcuBarrier()
            expectClean(r)
        }
        try forEachRegistryFlavor { try scenario($0) }
    }
}
