import Foundation
import XCTest
@testable import Lockdep

// The validated-chain shortcut exists only where Lockdep's checks are compiled in.
#if LOCKDEP_CHECKS

/// A mutex's outermost `lock()` of subclass 0 takes its chain key from the lock and, once any
/// thread validated that chain in the current state word, skips the thread's own cache of
/// validated chains (`LockCell.outermostValidatedWord`). What it stores and what the graph
/// records must be what the full acquire would have made.
final class OutermostChainTests: LockdepTestCase {
    /// The key pushed on that path is the one the engine computes from the entry, on a thread
    /// that never validated the chain itself, and locks taken inside build on it.
    func testTheOutermostKeyIsTheEnginesOnAnotherThread() {
        let outer = CheckedMutex(class: .unique("outermost.key.outer"))
        let inner = CheckedMutex(class: .unique("outermost.key.inner"))
        outer.lock(); outer.unlock()
        let storage = outer.storage
        XCTAssertEqual(storage.outermostValidatedWord, ThreadState.current().pointee.fastWord,
                       "the main thread's lock() recorded no validated outermost chain")
        let keys = Locked<[[UInt64]]>([])
        onThread(named: "outermost-b") {
            // This thread's first lock creates its state on the full path: once more for the fast one.
            outer.lock(); outer.unlock()
            outer.lock()
            let afterOuter = (storedChainKeys(), eagerChainKeys())
            inner.lock()
            let afterInner = (storedChainKeys(), eagerChainKeys())
            inner.unlock(); outer.unlock()
            keys.withLock { $0 = [afterOuter.0, afterOuter.1, afterInner.0, afterInner.1] }
        }
        let k = keys.withLock { $0 }
        XCTAssertEqual(k.count, 4)
        XCTAssertEqual(k[0], k[1], "the outermost entry's stored key is not the engine's")
        XCTAssertEqual(k[2], k[3], "a lock taken inside did not build on the engine's key")
        XCTAssertEqual(k[0].first, storage.exclusiveSleepingOutermostKey)
        expectSilent()
    }

    /// A reset forgets every chain, and the word the lock remembers is the old one: an outermost
    /// acquire after it is validated again (recorded in the new graph) even when this thread's
    /// first acquires after the reset were not outermost.
    func testAResetMakesTheOutermostChainValidatedAgain() {
        let m = CheckedMutex(class: .unique("outermost.reset.m"))
        let n = CheckedMutex(class: .unique("outermost.reset.n"))
        m.lock(); m.unlock()
        m.lock(); m.unlock()
        Lockdep.resetForTesting()
        XCTAssertEqual(Lockdep.graphSize.chains, 0)
        n.lock(); m.lock(); m.unlock(); n.unlock()
        XCTAssertEqual(Lockdep.graphSize.chains, 2)
        m.lock(); m.unlock()
        XCTAssertEqual(Lockdep.graphSize.chains, 3, "the outermost chain was not validated after the reset")
        expectSilent()
    }

    /// The shortcut is the outermost chain's alone: under another lock the same mutex makes a
    /// new chain, validated and recorded, and the reverse order on another thread is a deadlock.
    func testUnderAnotherLockTheChainIsValidatedAsAlways() {
        let a = CheckedMutex(class: .unique("outermost.order.a"))
        let b = CheckedMutex(class: .unique("outermost.order.b"))
        a.lock(); a.unlock()
        b.lock(); b.unlock()
        let before = Lockdep.graphSize.chains
        a.lock(); b.lock(); b.unlock(); a.unlock()
        XCTAssertEqual(Lockdep.graphSize.chains, before + 1)
        onThread(named: "outermost-reverse") {
            b.lock(); b.unlock()
            b.lock(); a.lock(); a.unlock(); b.unlock()
        }
        XCTAssertEqual(collector.kinds, [.circularDependency])
    }
}
#endif
