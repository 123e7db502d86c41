import Foundation
import IOMMU
import Lockdep
import RCU
import XCTest

/// Registries created and shut down in a loop: their per-instance Lockdep classes are dynamic
/// keys, freed with the registry, so the validator's graph stays flat instead of filling
/// MAX_LOCKDEP_KEYS after about a thousand registries (8 classes each).
final class RegistryLifecycleTests: IOMMUTestCase {
    /// One registry's life: create, probe and release a device (so its classes gain
    /// dependencies and chains), shut down, drop.
    private func cycle(_ i: Int) throws {
        let r = makeRegistry(shutdownAfterTest: false)
        let dev = r.makeDevice(name: "dev\(i)")
        try r.probeDevice(dev)
        try r.releaseDevice(dev)
        r.shutdown()
    }

    private func residentKilobytes() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) else { return 0 }
        return Int(line.filter(\.isNumber)) ?? 0
    }

    /// 10,000 cycles (about 5 s in a debug build on the project's 2-core VM; 3,000 under the
    /// sanitizers), checkpointed at 1,000: the live classes, dependencies and chains must be the same at both points.
    /// `REGISTRY_LIFECYCLE_CYCLES` overrides the count. Before dynamic keys, the 1,024th
    /// registry trapped on MAX_LOCKDEP_KEYS.
    func testCreateAndShutdownCyclesKeepLockdepFlat() throws {
        // Under the sanitizers (22-32 s of CI for 10,000) 3,000 cycles still pass the 1,024 keys
        // that trapped before dynamic keys three times over.
        let sanitized = runningUnderThreadSanitizer || runningUnderAddressSanitizer
        let cycles = ProcessInfo.processInfo.environment["REGISTRY_LIFECYCLE_CYCLES"].flatMap(Int.init)
            ?? (sanitized ? 3_000 : 10_000)
        let checkpoint = min(1_000, cycles)
        Lockdep.limits = LockdepLimits()   // the kernel's 8192 classes
        let start = Date()
        var atCheckpoint: LockdepGraphSize?
        var rssAtCheckpoint = 0
        for i in 1...cycles {
            try cycle(i)
            if i == checkpoint {
                rcuBarrier()
                atCheckpoint = Lockdep.graphSize
                rssAtCheckpoint = residentKilobytes()
            }
        }
        rcuBarrier()
        let atEnd = Lockdep.graphSize
        let rssAtEnd = residentKilobytes()
        let seconds = Date().timeIntervalSince(start)
        print("registry lifecycle: \(cycles) cycles in \(String(format: "%.1f", seconds)) s; "
            + "cycle \(checkpoint): \(atCheckpoint.map(\.description) ?? "-"), RSS \(rssAtCheckpoint) kB; "
            + "cycle \(cycles): \(atEnd), RSS \(rssAtEnd) kB")

        XCTAssertFalse(lockdep.kinds.contains(.capacityExceeded), lockdep.reports.map(\.text).joined(separator: "\n"))
        expectNoLockdepReports()
        if Lockdep.checksCompiledIn { XCTAssertTrue(Lockdep.isValidating, "validation must still be on") }
        let mid = try XCTUnwrap(atCheckpoint)
        XCTAssertEqual(atEnd.classes, mid.classes, "live classes: \(mid) -> \(atEnd)")
        XCTAssertEqual(atEnd.dependencies, mid.dependencies, "dependencies: \(mid) -> \(atEnd)")
        XCTAssertEqual(atEnd.chains, mid.chains, "chains: \(mid) -> \(atEnd)")
        XCTAssertLessThan(atEnd.classes, 100, "only the static classes and the last registries' remain")
    }

    /// A dynamic class's dependencies go with it: a registry still alive keeps its own.
    func testShutdownRegistryClassesLeaveTheGraph() throws {
        let before = Lockdep.graphSize
        var r: Registry<RCUMemb>? = makeRegistry(shutdownAfterTest: false)
        let dev = r!.makeDevice(name: "dev")
        try r!.probeDevice(dev)
        let during = Lockdep.graphSize
        XCTAssertGreaterThan(during.classes, before.classes)
        // (Dependencies are recorded only with checks compiled in; classes in every build.)
        if Lockdep.checksCompiledIn { XCTAssertGreaterThan(during.dependencies, before.dependencies) }
        try r!.releaseDevice(dev)
        r!.shutdown()
        r = nil
        rcuBarrier()
        let after = Lockdep.graphSize
        XCTAssertLessThan(after.classes, during.classes, "\(before) / \(during) / \(after)")
        if Lockdep.checksCompiledIn {
            XCTAssertLessThan(after.dependencies, during.dependencies, "\(before) / \(during) / \(after)")
        }
        expectNoLockdepReports()
    }
}
