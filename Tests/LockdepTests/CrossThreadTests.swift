import Foundation
import XCTest
@testable import Lockdep

/// Orderings observed by different threads, at different times, on different instances of the
/// same classes are combined at class level.
final class CrossThreadTests: LockdepTestCase {
    func testABBAAcrossThreadsOnDifferentInstances() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let classA = LockClass.unique("inode->lock"), classB = LockClass.unique("sb->lock")
        let firstLine: UInt = #line + 4
        onThread(named: "t1") {
            let a1 = CheckedMutex(class: classA), b1 = CheckedMutex(class: classB)
            a1.lock()
            b1.lock()
            b1.unlock(); a1.unlock()
        }
        expectSilent()
        let secondLine: UInt = #line + 4
        onThread(named: "t2") {
            let a2 = CheckedMutex(class: classA), b2 = CheckedMutex(class: classB)
            b2.lock()
            a2.lock()
            a2.unlock(); b2.unlock()
        }
        let r = try XCTUnwrap(expectOne(.circularDependency))
        XCTAssertEqual(r.thread, "t2")
        XCTAssertEqual(r.otherThread, "t1")
        XCTAssertEqual(r.chain.map { "\($0.from)->\($0.to)" }, ["inode->lock->sb->lock", "sb->lock->inode->lock"])
        XCTAssertEqual(r.chain[0].thread, "t1")
        XCTAssertEqual(r.chain[0].toSite.line, firstLine)
        XCTAssertEqual(r.chain[1].thread, "t2")
        XCTAssertEqual(r.chain[1].toSite.line, secondLine)
        XCTAssertTrue(r.text.contains("by thread \"t1\", stack:"))
        XCTAssertTrue(r.text.contains("by thread \"t2\", stack:"))
    }

    /// Two threads running AB and BA concurrently many times: the pair is reported (once) no
    /// matter how the runs interleave. The locks are spinlocks taken with trylock-free nesting
    /// on distinct instances per thread, so the run itself can never deadlock.
    func testConcurrentOppositeOrdersOnPrivateInstances() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let classA = LockClass.unique("A"), classB = LockClass.unique("B")
        let workers = [false, true].enumerated().map { index, reversed in
            startThread(named: "worker-\(index)") {
                let a = CheckedSpinLock(class: classA), b = CheckedSpinLock(class: classB)
                for _ in 0..<200 {
                    if reversed { b.withLock { a.withLock {} } } else { a.withLock { b.withLock {} } }
                }
            }
        }
        workers.forEach { $0.wait() }
        XCTAssertEqual(collector.kinds, [.circularDependency])
    }

    func testChainCacheHitsStaySilentAcrossThreads() {
        let classA = LockClass.unique("A"), classB = LockClass.unique("B")
        let readers = (0..<4).map { index in
            startThread(named: "reader-\(index)") {
                let a = CheckedMutex(class: classA), b = CheckedMutex(class: classB)
                for _ in 0..<500 { a.withLock { b.withLock {} } }
            }
        }
        readers.forEach { $0.wait() }
        expectSilent()
    }
}
