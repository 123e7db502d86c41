import IOMMU
import Lockdep
import RCU
import XCTest

/// S6 and S7: the 2023 locking of dev->iommu_group.
final class LockingScenarioTests: IOMMUTestCase {
    // MARK: S6: a mutex in the ISR

    func testS6BuggyMutexInISRIsInvalidContext() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        func scenario<Flavor: RCUFlavor>(_: Flavor.Type) throws {
            let r = makeRegistry(Flavor.self, bugs: [.mutexInISR])
            let dev = r.makeDevice(name: "dev0")
            try r.probeDevice(dev)
            let isr = TestThread(named: "isr", context: .hardirq) { r.lookup(dev) }
            XCTAssertTrue(isr.join())
            let report = try XCTUnwrap(lockdep.reports.first)
            XCTAssertEqual(report.kind, .sleepInInvalidContext)
            XCTAssertTrue(report.text.contains("sleeping function called from invalid context"), report.text)
            XCTAssertTrue(report.text.contains("dev_iommu_group_lock"), report.text)
            try r.releaseDevice(dev)
        }
        try forEachRegistryFlavor { try scenario($0) }
    }

    /// The variant: an RCU reader blocks on a mutex M while a writer holding M waits for a
    /// grace period. Lockdep reports the cycle before it can deadlock.
    func testS6BuggyVariantSynchronizeUnderTheLockReadersTake() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        func scenario<Flavor: RCUFlavor>(_: Flavor.Type) throws {
            let r = makeRegistry(Flavor.self, bugs: [.mutexInISR])
            let dev = r.makeDevice(name: "dev0")
            try r.probeDevice(dev)
            // A reader in process context (so only the ordering is at stake): rcu_read_lock -> M.
            let reader = TestThread(named: "reader") { r.lookup(dev) }
            XCTAssertTrue(reader.join())
            let writer = TestThread(named: "writer") { r.devIommuGroupLock.withLock { Flavor.synchronize() } }
            XCTAssertTrue(writer.join())
            let report = try XCTUnwrap(lockdep.reports.first { $0.kind == .circularDependency }, "\(lockdep.kinds)")
            XCTAssertEqual(Set(report.classes), ["dev_iommu_group_lock", Flavor.lockdepMap.description])
            try r.releaseDevice(dev)
        }
        try forEachRegistryFlavor { try scenario($0) }
    }

    func testS6FixedISRTakesNoLock() throws {
        func scenario<Flavor: RCUFlavor>(_: Flavor.Type) throws {
            let r = makeRegistry(Flavor.self)
            let dev = r.makeDevice(name: "dev0")
            try r.probeDevice(dev)
            let found = Locked(false)
            let isr = TestThread(named: "isr", context: .hardirq) { found.value = r.lookup(dev) }
            XCTAssertTrue(isr.join())
            XCTAssertTrue(found.value)
            try r.releaseDevice(dev)
            rcuBarrier()
            expectClean(r)
        }
        try forEachRegistryFlavor { try scenario($0) }
    }

    // MARK: S7: AA on device_lock (2023)

    func testS7aBuggyProbeUnderReallyProbeIsRecursiveLocking() throws {
        func scenario<Flavor: RCUFlavor>(_: Flavor.Type) throws {
            let r = makeRegistry(Flavor.self, bugs: [.recursiveDeviceLock])
            let dev = r.makeDevice(name: "0000:00:01.0")
            XCTAssertThrowsError(try r.driverProbe(dev) { () throws(IOMMUError) in try r.probeDevice(dev) }) {
                XCTAssertEqual($0 as? IOMMUError, .wouldDeadlock)
            }
            // (Lockdep's report needs the checks compiled in; every build refuses the acquire.)
            if Lockdep.checksCompiledIn {
                let report = try XCTUnwrap(lockdep.reports.first)
                XCTAssertEqual(report.kind, .recursiveLocking)
                XCTAssertEqual(report.classes, ["&dev->mutex"])
                XCTAssertTrue(report.text.contains("possible recursive locking detected"), report.text)
            }
            XCTAssertNil(r.group(of: dev))
            XCTAssertThrowsError(try r.releaseDevice(dev)) { XCTAssertEqual($0 as? IOMMUError, .noDevice) }
        }
        try forEachRegistryFlavor { try scenario($0) }
    }

    func testS7bBuggyIommuRegisterFromItsOwnProbeIsRecursiveLocking() throws {
        func scenario<Flavor: RCUFlavor>(_: Flavor.Type) throws {
            let r = makeRegistry(Flavor.self, bugs: [.recursiveDeviceLock])
            let hwdev = r.makeDevice(name: "smmu@15000000")
            let dev = r.makeDevice(name: "dev0")
            let failures = try r.driverProbe(hwdev) { r.registerIommu(hwdev: hwdev) }
            XCTAssertEqual(failures.map(\.0.name), ["smmu@15000000"])
            XCTAssertEqual(failures.first?.1, .wouldDeadlock)
            // (Lockdep's report needs the checks compiled in; every build refuses the acquire.)
            if Lockdep.checksCompiledIn { XCTAssertTrue(lockdep.kinds.contains(.recursiveLocking), "\(lockdep.kinds)") }
            XCTAssertNotNil(r.group(of: dev))
            try r.releaseDevice(dev)
        }
        try forEachRegistryFlavor { try scenario($0) }
    }

    func testS7FixedGlobalProbeLockOnly() throws {
        func scenario<Flavor: RCUFlavor>(_: Flavor.Type) throws {
            let r = makeRegistry(Flavor.self)
            let hwdev = r.makeDevice(name: "smmu@15000000")
            let a = r.makeDevice(name: "devA", groupTag: "bus0")
            let b = r.makeDevice(name: "devB", groupTag: "bus0")
            try r.driverProbe(a) { () throws(IOMMUError) in try r.probeDevice(a) }  // &dev->mutex -> iommu_probe_device_lock
            let failures = try r.driverProbe(hwdev) { r.registerIommu(hwdev: hwdev) }
            XCTAssertTrue(failures.isEmpty)
            XCTAssertNil(r.group(of: hwdev), "the IOMMU's own device is skipped")
            XCTAssertTrue(r.group(of: a) === r.group(of: b))
            XCTAssertTrue(r.checkInvariants(quiescent: true).isEmpty)
            try r.releaseDevice(a)
            try r.releaseDevice(b)
            rcuBarrier()
            expectClean(r)
        }
        try forEachRegistryFlavor { try scenario($0) }
    }
}
