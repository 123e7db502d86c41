import IOMMU
import Lockdep
import RCU
import XCTest

/// Divergence 1 (issue 16): the modelled SMMUv3 driver's IOPF queue puts
/// `group->mutex -> &queue->lock -> &param->lock` on every attach or detach of a fault-capable
/// domain, as `arm_smmu_enable_iopf` / `arm_smmu_disable_iopf` do in the kernel, so a D2 worker
/// that takes `&param->lock` before `group->mutex` is the ABBA real Lockdep would report.
final class IopfLockOrderTests: IOMMUTestCase {
    /// Quarantines `dev` from an ISR, then recovers it with an FLR (prepare/done).
    private func quarantineAndRecover<Flavor>(_ r: Registry<Flavor>, _ dev: Device<Flavor>) throws {
        let isr = TestThread(named: "isr", context: .hardirq) { XCTAssertTrue(r.reportBroken(dev)) }
        XCTAssertTrue(isr.join())
        r.flushBrokenWork()
        XCTAssertEqual(r.snapshot(of: dev)?.members.first?.blocked, .broken)
        try r.resetPrepare(dev)
        r.resetDone(dev)
        XCTAssertEqual(r.snapshot(of: dev)?.members.first?.blocked, GdevBlocked.none)
    }

    /// D2 as first ported: its worker records `&param->lock -> group->mutex`; attaching an SVA
    /// (fault-capable) domain then takes `group->mutex -> &queue->lock -> &param->lock`.
    func testD2WorkerTakingParamLockIsACycleOnceIOPFIsEnabled() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        func scenario<Flavor: RCUFlavor>(_: Flavor.Type) throws {
            let r = makeRegistry(Flavor.self, design: .devmutex, bugs: [.paramLockInDevIommuWorker])
            let dev = r.makeDevice(name: "0000:01:00.0")
            try r.probeDevice(dev)
            try quarantineAndRecover(r, dev)
            expectNoLockdepReports()   // without IOPF nothing orders the two locks the other way

            Lockdep.currentThreadName = "iommufd"
            let sva = Domain(name: "sva", handlesIOPF: true)
            try r.attachDevice(sva, to: dev)
            let report = try XCTUnwrap(lockdep.reports.first { $0.kind == .circularDependency },
                                       "\(lockdep.reports.map(\.text))")
            XCTAssertTrue(Set(report.classes).isSuperset(of: ["group->mutex", "&param->lock"]), "\(report.classes)")
            XCTAssertEqual(report.heldLocks.map(\.name), ["group->mutex", "&queue->lock"])
            XCTAssertEqual(report.lock?.name, "&param->lock")
            XCTAssertTrue(report.text.contains("possible circular locking dependency detected"), report.text)
        }
        try forEachRegistryFlavor { try scenario($0) }
    }

    /// Fixed D2: the worker relies on `disable_work_sync` in the remover and takes no
    /// `&param->lock`; attach and detach of a fault-capable domain around quarantines are silent.
    func testFixedD2WithIOPFIsSilent() throws {
        func scenario<Flavor: RCUFlavor>(_: Flavor.Type) throws {
            for design in [BrokenDeviceDesign.devmutex, .rcu] {
                Lockdep.resetForTesting()
                lockdep.install()
                let r = makeRegistry(Flavor.self, design: design)
                let dev = r.makeDevice(name: "0000:01:00.0")
                try r.probeDevice(dev)
                try quarantineAndRecover(r, dev)
                let sva = Domain(name: "sva", handlesIOPF: true)
                try r.attachDevice(sva, to: dev)
                try quarantineAndRecover(r, dev)        // quarantine detaches the SVA domain (blocking)
                XCTAssertTrue(r.driverDomain(for: dev) === sva, "\(design): done() re-attached the SVA domain")
                r.detachGroup(sva, from: try XCTUnwrap(r.group(of: dev)))   // leaves the IOPF queue
                try r.attachDevice(sva, to: dev)
                r.detachGroup(sva, from: try XCTUnwrap(r.group(of: dev)))
                try r.releaseDevice(dev)
                rcuBarrier()
                expectClean(r)
            }
        }
        try forEachRegistryFlavor { try scenario($0) }
    }
}
