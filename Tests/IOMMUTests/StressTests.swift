import Foundation
import IOMMU
import Lockdep
import RCU
import Synchronization
import XCTest

/// Randomized stress: ISR threads (hardirq context) report faults on random devices while
/// writers probe, release, claim and release ownership, attach, reset and use default
/// domains; invariants are checked throughout. The fixed configuration must produce zero
/// use-after-free reports, zero invariant violations, zero WARNs and zero Lockdep reports.
///
/// Each thread draws from its own SplitMix64, seeded from the printed seed, so a run can be replayed.
/// About 3 s per design; set `IOMMU_LONG_TESTS=1` for 60 s per design.
final class StressTests: IOMMUTestCase {
    final class Owner {}

    func testStressRCUDesign() throws { try forEachRegistryFlavor { try stress($0, .rcu) } }
    func testStressDevMutexDesign() throws { try forEachRegistryFlavor { try stress($0, .devmutex) } }
    func testStressDriverOnlyDesign() throws { try forEachRegistryFlavor { try stress($0, .driverOnly) } }

    private func stress<Flavor: RCUFlavor>(_ flavor: Flavor.Type, _ design: BrokenDeviceDesign) throws {
        let long = ProcessInfo.processInfo.environment["IOMMU_LONG_TESTS"] != nil
        let seconds = long ? 60.0 : 3.0
        let seed = UInt64(Date().timeIntervalSince1970 * 1000) | 1
        print("IOMMU stress \(design) on \(Flavor.name): \(seconds) s, seed \(seed)")
        let r = makeRegistry(flavor, design: design)

        let writers = 2, isrs = 2
        var owned: [[Device<Flavor>]] = []
        for w in 0..<writers {
            var devices: [Device<Flavor>] = []
            for g in 0..<3 {
                for f in 0..<3 { devices.append(r.makeDevice(name: "w\(w)-\(g).\(f)", groupTag: "w\(w)-bridge\(g)")) }
            }
            for s in 0..<2 { devices.append(r.makeDevice(name: "w\(w)-solo\(s)")) }
            owned.append(devices)
        }
        let all = owned.flatMap { $0 }
        let stop = Atomic<Bool>(false)
        let ops = Atomic<Int>(0)
        let unexpected = Locked<[String]>([])

        var threads: [TestThread] = []
        for i in 0..<isrs {
            threads.append(TestThread(named: "isr-\(i)", context: .hardirq) {
                var rng = SplitMix64(seed: seed &+ UInt64(100 + i))
                while !stop.load(ordering: .relaxed) {
                    let dev = all[Int.random(in: 0..<all.count, using: &rng)]
                    if Int.random(in: 0..<4, using: &rng) == 0 { r.reportBroken(dev) } else { r.lookup(dev) }
                }
            })
        }
        for w in 0..<writers {
            let devices = owned[w]
            threads.append(TestThread(named: "writer-\(w)") {
                var rng = SplitMix64(seed: seed &+ UInt64(w))
                var probed = Set<ObjectIdentifier>()
                let owner = Owner()
                var n = 0
                func fail(_ what: String) { unexpected.value.append("writer-\(w): \(what)") }
                while !stop.load(ordering: .relaxed) {
                    n += 1
                    let dev = devices[Int.random(in: 0..<devices.count, using: &rng)]
                    let isProbed = probed.contains(ObjectIdentifier(dev))
                    do throws(IOMMUError) {
                        switch Int.random(in: 0..<6, using: &rng) {
                        case 0, 1:
                            if isProbed {
                                try r.releaseDevice(dev)
                                probed.remove(ObjectIdentifier(dev))
                            } else {
                                try r.probeDevice(dev)
                                probed.insert(ObjectIdentifier(dev))
                            }
                        case 2 where isProbed:
                            // VFIO-style: claim, attach a user domain, detach, release.
                            do throws(IOMMUError) {
                                try r.claimDmaOwner(dev, owner: owner)
                            } catch .busy {
                                break   // in recovery
                            }
                            let group = r.group(of: dev)!
                            let user = Domain(name: "user")
                            do throws(IOMMUError) {
                                try r.attachGroup(user, to: group)
                                r.detachGroup(user, from: group)
                            } catch .busy {
                                // a device of the group is being recovered
                            }
                            r.releaseDmaOwner(dev)
                        case 3 where isProbed:
                            try r.resetPrepare(dev)
                            if Int.random(in: 0..<2, using: &rng) == 0 { try r.resetPrepare(dev); r.resetDone(dev) }
                            r.resetDone(dev, succeeded: Int.random(in: 0..<8, using: &rng) != 0)
                        case 4 where isProbed:
                            do throws(IOMMUError) {
                                try r.useDefaultDomain(dev)
                                r.unuseDefaultDomain(dev)
                            } catch .busy {
                                break
                            }
                        case 5 where w == 0 && n % 16 == 0:
                            let found = r.checkInvariants()
                            if !found.isEmpty { fail("invariants: \(found)") }
                        default:
                            break
                        }
                    } catch {
                        fail("\(dev.name): unexpected \(error)")
                    }
                    ops.add(1, ordering: .relaxed)
                }
                // Leave nothing probed.
                for dev in devices where probed.contains(ObjectIdentifier(dev)) {
                    do throws(IOMMUError) { try r.releaseDevice(dev) } catch { fail("final release: \(error)") }
                }
            })
        }
        Thread.sleep(forTimeInterval: seconds)
        stop.store(true, ordering: .relaxed)
        for t in threads { XCTAssertTrue(t.join(timeout: 60), "a stress thread hung") }
        r.flushBrokenWork()
        rcuBarrier()

        XCTAssertEqual(unexpected.value, [])
        XCTAssertTrue(r.checkInvariants(quiescent: true).isEmpty)
        XCTAssertTrue(r.groups.isEmpty, "every group released: \(r.groups)")
        XCTAssertEqual(r.counters.groupsAllocated.load(ordering: .relaxed), r.counters.groupsFreed.load(ordering: .relaxed))
        XCTAssertEqual(r.counters.groupDevicesAllocated.load(ordering: .relaxed),
                       r.counters.groupDevicesFreed.load(ordering: .relaxed))
        expectClean(r)
        let c = r.counters
        print("""
            IOMMU stress \(design): \(ops.load(ordering: .relaxed)) writer ops, \
            \(c.probes.load(ordering: .relaxed)) probes, \(c.lookups.load(ordering: .relaxed)) lookups \
            (\(c.lookupHits.load(ordering: .relaxed)) hits), \(c.brokenReports.load(ordering: .relaxed)) reports, \
            \(c.quarantined.load(ordering: .relaxed)) quarantined, \
            \(c.workerRevalidationFailed.load(ordering: .relaxed)) worker revalidations failed
            """)
        XCTAssertGreaterThan(c.probes.load(ordering: .relaxed), 0)
        XCTAssertGreaterThan(c.lookups.load(ordering: .relaxed), 0)
    }
}
