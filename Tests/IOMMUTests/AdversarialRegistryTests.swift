import Foundation
import IOMMU
import Lockdep
import RCU
import Synchronization
import XCTest

/// Hostile uses of the flavor-generic `Registry`: qsbr registries read by threads that never
/// register or announce a quiescent state, memb and qsbr registries side by side, and a
/// registry shut down while its "ISR" readers keep reading and reporting.
final class AdversarialRegistryTests: IOMMUTestCase {
    final class Shared: Sendable {
        let stop = Atomic<Bool>(false)
        let hits = Atomic<Int>(0)
    }

    /// ISR-like readers on plain threads (never registered with qsbr, never calling
    /// `quiescentState()`), against writers that probe and release on every registry.
    static func runChurn<Flavor: RCUFlavor>(_ registries: [Registry<Flavor>], devices: Int, rounds: Int,
                                     _ shared: Shared, readers group: DispatchGroup) throws {
        let devs = registries.map { r in (0..<devices).map { r.makeDevice(name: "adv.\($0)", groupTag: "g\($0 % 2)") } }
        for (registry, devs) in zip(registries, devs) {
            for _ in 0..<2 {
                group.enter()
                Thread {
                    while !shared.stop.load(ordering: .relaxed) {
                        for dev in devs where registry.lookup(dev) { _ = shared.hits.add(1, ordering: .relaxed) }
                        Lockdep.withContext(.hardirq) { _ = registry.reportBroken(devs[0]) }
                    }
                    group.leave()
                }.start()
            }
        }
        for _ in 0..<rounds {
            for (registry, devs) in zip(registries, devs) {
                for dev in devs { try registry.probeDevice(dev) }
                for dev in devs { try registry.releaseDevice(dev) }
            }
        }
    }

    func testManyRegistriesOfBothFlavorsWithUnregisteredReadersAndShutdownUnderReaders() throws {
        let memb = (0..<3).map { _ in Registry(configuration: .init(design: .rcu)) }
        let qsbr = (0..<3).map { _ in Registry(flavor: RCUQSBR.self, configuration: .init(design: .rcu)) }
        let shared = Shared()
        let readers = DispatchGroup()
        let writers = DispatchGroup()
        let failures = Locked<[String]>([])
        let churns: [@Sendable () throws -> Void] = [
            { try Self.runChurn(memb, devices: 4, rounds: 40, shared, readers: readers) },
            { try Self.runChurn(qsbr, devices: 4, rounds: 40, shared, readers: readers) },
        ]
        for work in churns {
            writers.enter()
            Thread {
                do { try work() } catch { failures.withLock { $0.append("\(error)") } }
                writers.leave()
            }.start()
        }
        XCTAssertEqual(writers.wait(timeout: .now() + 120), .success, "a writer hung (a qsbr grace period waited on a reader forever?)")
        // Shut every registry down while its readers still read and report.
        for r in memb { r.shutdown() }
        for r in qsbr { r.shutdown() }
        usleep(20_000)
        shared.stop.store(true, ordering: .relaxed)
        XCTAssertEqual(readers.wait(timeout: .now() + 60), .success, "a reader hung after shutdown")
        XCTAssertEqual(failures.value, [])
        XCTAssertGreaterThan(shared.hits.load(ordering: .relaxed), 0, "no reader ever found a probed device")
        rcuBarrier()
        for r in memb { expectNoViolations(r) }
        for r in qsbr { expectNoViolations(r) }
        expectNoLockdepReports()
    }

    func expectNoViolations<Flavor>(_ r: Registry<Flavor>, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(r.log.useAfterFreeTotal, 0, "\(r.log.useAfterFreeReports)", file: file, line: line)
        XCTAssertEqual(r.log.invariantViolationTotal, 0, "\(r.log.invariantViolations)", file: file, line: line)
        let violations = r.checkInvariants(quiescent: true)
        XCTAssertTrue(violations.isEmpty, "\(violations)", file: file, line: line)
    }
}
