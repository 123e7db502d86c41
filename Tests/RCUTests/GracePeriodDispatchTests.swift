import Foundation
import RCU
import Synchronization
import XCTest

/// The blocking grace periods of generic code (`replaceAndSynchronize` inlined into a caller
/// generic over the flavor, and `synchronize()`) reach the body of their own flavor: the
/// one that numbers that flavor's grace periods. Dispatched by metatype, a wrong branch
/// would complete another flavor's sequence and leave this flavor's cookie pending.
final class GracePeriodDispatchTests: XCTestCase {
    private final class Releases: Sendable {
        let count = Atomic<Int>(0)
    }

    private final class Node: Sendable {
        let releases: Releases
        init(_ releases: Releases) { self.releases = releases }
        deinit { releases.count.add(1, ordering: .relaxed) }
    }

    func testEveryFlavorsGenericWaitCompletesItsOwnCookieAndReleasesTheOldObject() {
        check(RCUMemb.self)
        check(RCUQSBR.self)
        check(RCUBulletproof.self)
        check(RCUMemoryBarrier.self)
    }

    /// The wait's misuse check asks whether the thread is in a bp section without making it
    /// a bp reader (liburcu's bp check registers the thread it asks about, and bp's grace
    /// periods scan every registered thread); inside a bp section the wait is still refused.
    func testWaitingDoesNotMakeTheThreadABulletproofReader() {
        let registered = Atomic<Int>(-1)
        let thread = Thread {
            RCUMemb.synchronize()
            RCUQSBR.synchronize()
            RCUMemoryBarrier.synchronize()
            registered.store(RCUBulletproof.isThreadRegistered ? 1 : 0, ordering: .releasing)
        }
        thread.start()
        let deadline = ContinuousClock.now + .seconds(30)
        while registered.load(ordering: .acquiring) < 0, ContinuousClock.now < deadline { usleep(1000) }
        XCTAssertEqual(registered.load(ordering: .acquiring), 0, "a grace-period wait registered the thread as a bp reader")
    }

    func testWaitInsideABulletproofSectionIsStillRefused() {
        final class Kinds: @unchecked Sendable {
            let lock = NSLock()
            var kinds: [RCUMisuse.Kind] = []
        }
        let recorded = Kinds()
        RCUMisuse.reportHandler = .custom { misuse in recorded.lock.withLock { recorded.kinds.append(misuse.kind) } }
        defer { RCUMisuse.reportHandler = .trap }
        RCUBulletproof.read { _ in
            RCUMemb.synchronize()
            RCUBulletproof.synchronize()
        }
        XCTAssertEqual(recorded.lock.withLock { recorded.kinds }, [.gracePeriodInOtherFlavorSection, .synchronizeInReadSection])
    }

    private func check<F: RCUFlavor>(_: F.Type) {
        let released = Releases()
        let pointer = RCUPointer<Node, F>(Node(released))
        for round in 1...3 {
            let cookie = F.gracePeriodCookie()
            let started = F.gracePeriodsStarted
            pointer.replaceAndSynchronize(with: Node(released))
            XCTAssertTrue(cookie.hasElapsed, "\(F.name) round \(round): replaceAndSynchronize left its own cookie pending")
            XCTAssertGreaterThan(F.gracePeriodsStarted, started, "\(F.name) round \(round): no grace period numbered")
            XCTAssertEqual(released.count.load(ordering: .relaxed), round, "\(F.name) round \(round): the old object was not released")

            let next = F.gracePeriodCookie()
            F.synchronize()
            XCTAssertTrue(next.hasElapsed, "\(F.name) round \(round): synchronize() left its own cookie pending")
        }
    }
}
