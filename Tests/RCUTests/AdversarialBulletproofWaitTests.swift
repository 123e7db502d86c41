import Foundation
import RCU
import RCUTestSupport
import Synchronization
import XCTest

/// bp grace-period waits from threads bp has never seen, inside other flavors' sections, and
/// from threads that read with bp only afterwards: refused exactly where a reader would be
/// waited for, and never registering the waiting thread with bp (the checked path asked
/// liburcu's bp "in a section?", which registers the thread it asks about: every bp wait in a
/// debug build, and in release every wait refused inside another flavor's section, left the
/// thread a bp reader that each later bp grace period scanned).
final class AdversarialBulletproofWaitTests: XCTestCase {
    final class Outcome: @unchecked Sendable {
        let lock = NSLock()
        var kinds: [RCUMisuse.Kind] = []
        var registeredAfterWaits: Bool?
        var registeredAfterRead: Bool?
        var elapsed = false
    }

    func testBulletproofWaitsFromAThreadBpNeverSaw() {
        let outcome = Outcome()
        RCUMisuse.reportHandler = .custom { misuse in outcome.lock.withLock { outcome.kinds.append(misuse.kind) } }
        defer { RCUMisuse.reportHandler = .trap }
        onThread(named: "adv-bp-waiter") {
            // Inside another flavor's section: refused, and still not a bp reader.
            RCUMemb.read { _ in RCUBulletproof.synchronize() }
            RCUQSBR.read { _ in RCUBulletproof.barrier() }
            RCUMemoryBarrier.read { _ in RCUBulletproof.synchronize() }
            // Outside any section: a plain wait, still not a bp reader; nor after an
            // unregisterThread(), whose own check asked bp too. (Not barrier(): liburcu's
            // urcu_bp_barrier registers its caller itself.)
            let cookie = RCUBulletproof.gracePeriodCookie()
            RCUBulletproof.synchronize()
            RCUBulletproof.unregisterThread()
            outcome.lock.withLock {
                outcome.elapsed = cookie.hasElapsed
                outcome.registeredAfterWaits = RCUBulletproof.isThreadRegistered
            }
            // Reading registers it; a wait inside its own section and another flavor's wait
            // inside it are refused; after the section, waits work again.
            RCUBulletproof.read { _ in
                RCUBulletproof.synchronize()
                RCUMemb.synchronize()
            }
            RCUBulletproof.synchronize()
            RCUMemb.synchronize()
            outcome.lock.withLock { outcome.registeredAfterRead = RCUBulletproof.isThreadRegistered }
        }
        outcome.lock.withLock {
            XCTAssertEqual(outcome.kinds, [.gracePeriodInOtherFlavorSection, .gracePeriodInOtherFlavorSection,
                                           .gracePeriodInOtherFlavorSection, .synchronizeInReadSection,
                                           .gracePeriodInOtherFlavorSection])
            XCTAssertTrue(outcome.elapsed, "the plain wait completed its own grace period")
            XCTAssertEqual(outcome.registeredAfterWaits, false, "waits registered the thread as a bp reader")
            XCTAssertEqual(outcome.registeredAfterRead, true)
        }
    }

    /// Asking whether the thread is in a section is a question, not a registration: liburcu's
    /// bp `read_ongoing` registers the caller, so the public query made every thread that asked
    /// a bp reader that each later grace period scanned.
    func testAskingIsInReadSectionDoesNotRegister() {
        let answers = Mutex<[Bool]>([])
        onThread(named: "adv-bp-asker") {
            let before = RCUBulletproof.isInReadSection
            let registered = RCUBulletproof.isThreadRegistered
            let inside = RCUBulletproof.read { _ in RCUBulletproof.isInReadSection }
            let after = RCUBulletproof.isInReadSection
            answers.withLock { $0 = [before, registered, inside, after] }
        }
        XCTAssertEqual(answers.withLock { $0 }, [false, false, true, false],
                       "[outside, registered after asking, inside, after the section]")
    }
}
