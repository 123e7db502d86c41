#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Lockdep
import RCU
import RCUTestSupport
import Synchronization
import XCTest

/// Adversarial tests of session 12's fork wait for one-time initializers in progress, which
/// RCU's read maps are now made in: threads racing every flavor's first section (the maps'
/// first use) while their process forks, again and again.
final class AdversarialSession12ForkTests: XCTestCase {
    /// How long the suite's process waits for the fresh process (longer than its alarm).
    private static let freshProcessTimeout: Duration = .seconds(170)

    /// Each child of the fresh process starts where no read map exists yet (the fresh process
    /// never makes them): four threads race the four flavors' first sections, with Lockdep
    /// checking them, while the child forks grandchildren as fast as it can. No grandchild
    /// may hang, and in each the read map is held inside a section of every flavor.
    func testForksWhileThreadsRaceTheReadMapsFirstUse() throws {
        try XCTSkipIf(runningUnderThreadSanitizer, "ThreadSanitizer does not support threads created after fork()")
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        guard inFreshTestProcess else {
            let test = "RCUTests.AdversarialSession12ForkTests/testForksWhileThreadsRaceTheReadMapsFirstUse"
            return XCTAssertNil(failureOfFreshTestProcess(test, timeout: Self.freshProcessTimeout))
        }
        alarm(150)
        // What the maps' initializer runs, first: Lockdep's own one-time state (its graph,
        // this thread's state) and the runtime's metadata for a map's creation and publication.
        // A child forked while another thread creates either waits for ever (the fork safety
        // of the other one-time initializers is not this test's subject; the runtime's
        // metadata locks are out of any package's reach): the racing threads then run nothing
        // but the maps' first use.
        _ = Lockdep.heldLockCount
        LockdepMapCell.allocate().fill(from: LockdepMap("adv12.fork.warm-up", key: "adv12.fork.warm-up",
                                                        options: [.atomic, .rcu]))
        _ = [LockdepMap]()
        startThread(named: "warm-up") { _ = Race() }.wait()
        let children = forkChildren(24, alarm: 60, timeout: .seconds(90)) {
            let race = Race()
            let racers = [
                raceFirstSection(RCUMemb.self, race), raceFirstSection(RCUMemoryBarrier.self, race),
                raceFirstSection(RCUQSBR.self, race), raceFirstSection(RCUBulletproof.self, race),
            ]
            race.go.store(true, ordering: .releasing)
            let grandchildren = forkChildren(12, alarm: 30, timeout: .seconds(8)) {
                let held = [heldInSection(RCUMemb.self), heldInSection(RCUMemoryBarrier.self),
                            heldInSection(RCUQSBR.self), heldInSection(RCUBulletproof.self)]
                // (No grace period: the child's racing threads are registered readers, which a
                // grandchild's liburcu still lists; that wait is refused there as a misuse.)
                _exit(held.allSatisfy { $0 } ? 0 : 3)
            }
            racers.forEach { $0.wait() }
            let maps = [RCUMemb.lockdepMap, RCUMemoryBarrier.lockdepMap, RCUQSBR.lockdepMap, RCUBulletproof.lockdepMap]
            if Set(maps.map(ObjectIdentifier.init)).count != 4 || maps.contains(where: { $0.options != [.atomic, .rcu] })
                || !heldInSection(RCUMemb.self) || !heldInSection(RCUQSBR.self) {
                race.wrong.add(1, ordering: .relaxed)
            }
            let problems = grandchildren.hung + grandchildren.failed + race.wrong.load(ordering: .relaxed)
            _exit(problems == 0 ? 0 : 2)
        }
        XCTAssertEqual(children.exitedZero, children.forked,
                       "children: \(children.hung) hung, failed with \(children.failedStatuses) (512: a grandchild hung or failed)")
    }
}

/// The start signal of a child's racing threads, and what they saw wrong.
private final class Race: Sendable {
    let go = Atomic<Bool>(false)
    let wrong = Atomic<Int>(0)
    init() {}
}

/// A thread that waits for `race.go`, then uses `F`'s read map (its process's first use of
/// the read maps for one of the threads) and nothing else: code run for the first time beside
/// a fork, outside a bracketed initializer, may hold a lock of the runtime's metadata caches.
private func raceFirstSection<F: RCUFlavor>(_: F.Type, _ race: Race) -> TestThread {
    startThread(named: "race-\(F.name)") {
        while !race.go.load(ordering: .acquiring) {}
        _ = F.lockdepMap
    }
}

/// Whether Lockdep sees `F`'s read map held inside a reader scope's section and a plain one.
private func heldInSection<F: RCUFlavor>(_: F.Type) -> Bool {
    let scoped = F.withReader { reader in
        let held = reader.read { _ in Lockdep.isHeld(F.lockdepMap) }
        F.quiescentStateIfQSBR()
        return held
    }
    let plain = F.read { _ in Lockdep.isHeld(F.lockdepMap) }
    return scoped && plain && Lockdep.heldLockCount == 0
}
