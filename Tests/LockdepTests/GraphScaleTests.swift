import Foundation
import XCTest
@testable import Lockdep

/// The dependency graph at scale (a long chain of classes, searched with generation marks
/// instead of per-search sets) and dynamic class keys freed with their owner. No timing
/// assertions: `rcu-stress lock-graph` measures the cost.
final class GraphScaleTests: LockdepTestCase {
    /// A chain c0 -> c1 -> ... -> c(n-1), each new class's acquire adding one dependency.
    private func buildChain(_ n: Int, dynamic: Bool = false) -> [CheckedMutex] {
        var locks: [CheckedMutex] = []
        locks.reserveCapacity(n)
        for i in 0..<n {
            let cls = dynamic ? LockClass.dynamic("chain\(i)") : LockClass.unique("chain\(i)")
            let m = CheckedMutex(class: cls)
            if let previous = locks.last {
                previous.lock(); m.lock(); m.unlock(); previous.unlock()
            } else {
                m.lock(); m.unlock()
            }
            locks.append(m)
        }
        return locks
    }

    func testFourThousandClassChainThenACycleClosedAtItsEnd() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let n = 4000
        let locks = buildChain(n)
        expectSilent()
        XCTAssertEqual(Lockdep.graphSize.dependencies, n - 1)

        // The last class, then the first: closes a cycle through the whole chain.
        locks[n - 1].lock()
        let line: UInt = #line + 1
        locks[0].lock()
        locks[0].unlock(); locks[n - 1].unlock()
        let r = try XCTUnwrap(expectOne(.circularDependency))
        XCTAssertEqual(r.lock?.name, "chain0")
        XCTAssertEqual(r.site?.line, line)
        XCTAssertEqual(r.heldLocks.map(\.name), ["chain\(n - 1)"])
        XCTAssertEqual(r.chain.count, n, "the whole chain plus the new dependency")
        XCTAssertEqual(r.chain.first.map { "\($0.from)->\($0.to)" }, "chain0->chain1")
        XCTAssertEqual(r.chain.last.map { "\($0.from)->\($0.to)" }, "chain\(n - 1)->chain0")
        XCTAssertTrue(r.text.contains("WARNING: possible circular locking dependency detected"))
        XCTAssertTrue(r.text.contains("Chain exists of:\n  chain\(n - 1) --> chain\(n - 2) --> "), r.text.prefix(2000).description)
        XCTAssertEqual(Lockdep.graphSize.dependencies, n - 1, "the closing dependency is not recorded")
    }

    func testShortCycleAtTheEndOfALongChain() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let n = 4000
        let locks = buildChain(n)
        locks[n - 1].lock()
        locks[n - 2].lock()
        locks[n - 2].unlock(); locks[n - 1].unlock()
        let r = try XCTUnwrap(expectOne(.circularDependency))
        XCTAssertEqual(r.chain.map { "\($0.from)->\($0.to)" }, ["chain\(n - 2)->chain\(n - 1)", "chain\(n - 1)->chain\(n - 2)"])
    }

    /// An irq-safe class at the head of a long chain makes the new dependency at its tail an
    /// inversion when the tail is taken with interrupts enabled: the reach bits let the search
    /// skip the graph only when nothing can conflict.
    func testInversionAcrossALongChain() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let n = 1000
        let head = CheckedSpinLock(class: .unique("head"))
        Lockdep.withContext(.hardirq) { head.lock(); head.unlock() }     // IN-HARDIRQ-W
        let links = (0..<n).map { CheckedSpinLock(class: .unique("link\($0)")) }
        Lockdep.withInterruptsDisabled {
            head.lock(); links[0].lock(); links[0].unlock(); head.unlock()
            for i in 1..<n {
                links[i - 1].lock(); links[i].lock(); links[i].unlock(); links[i - 1].unlock()
            }
        }
        expectSilent()
        let tail = CheckedSpinLock(class: .unique("tail"))
        tail.lock(); tail.unlock()                                        // HARDIRQ-ON-W
        Lockdep.withInterruptsDisabled { links[n - 1].lock(); tail.lock(); tail.unlock(); links[n - 1].unlock() }
        let r = try XCTUnwrap(expectOne(.irqLockInversion))
        XCTAssertTrue(r.text.contains("(head)"), r.text)
        XCTAssertTrue(r.text.contains("(tail)"), r.text)
        XCTAssertEqual(r.chain.count, n + 1, "head -> link0 -> ... -> link\(n - 1) -> tail")
    }

    // MARK: dynamic keys

    func testDynamicClassesAreFreedWithTheirOwner() throws {
        let base = Lockdep.graphSize
        do {
            let locks = buildChain(100, dynamic: true)
            XCTAssertEqual(Lockdep.graphSize.classes, base.classes + 100)
            // (Dependencies are recorded only with checks compiled in; classes in every build.)
            if Lockdep.checksCompiledIn { XCTAssertEqual(Lockdep.graphSize.dependencies, base.dependencies + 99) }
            XCTAssertTrue(locks.allSatisfy { $0.lockClass.isDynamic })
        }
        XCTAssertEqual(Lockdep.graphSize, base)
        expectSilent()
    }

    func testFreedClassLeavesNoDependencyBehind() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let a = CheckedMutex(class: .dynamic("A"))
        var b: CheckedMutex? = CheckedMutex(class: .dynamic("B"))
        a.lock(); b!.lock(); b!.unlock(); a.unlock()      // A -> B, chain [A, B] cached
        b = nil                                           // B freed: its number is reused next
        let c = CheckedMutex(class: .dynamic("C"))
        c.lock(); a.lock(); a.unlock(); c.unlock()        // C -> A: no stale A -> B to close a cycle
        expectSilent()
        // A then C: the chain's key equals the old [A, B] one, which must not be trusted.
        a.lock(); c.lock(); c.unlock(); a.unlock()
        let r = try XCTUnwrap(expectOne(.circularDependency))
        XCTAssertEqual(r.chain.map { "\($0.from)->\($0.to)" }, ["C->A", "A->C"])
    }

    func testManyMoreDynamicClassesThanTheLimitOverTime() throws {
        var limits = LockdepLimits()
        limits.maxClasses = Lockdep.graphSize.classes + 50
        Lockdep.limits = limits
        let outer = CheckedMutex(class: .unique("outer"))
        for round in 0..<40 {
            let locks = (0..<40).map { CheckedMutex(class: .dynamic("round\(round).\($0)")) }
            outer.lock()
            for m in locks { m.lock(); m.unlock() }
            outer.unlock()
        }
        expectSilent()
        if Lockdep.checksCompiledIn { XCTAssertTrue(Lockdep.isValidating) }   // never on with checks compiled out
    }

    func testTheClassLimitStillReportsLiveDynamicClasses() throws {
        var limits = LockdepLimits()
        limits.maxClasses = Lockdep.graphSize.classes + 10
        Lockdep.limits = limits
        let live = (0..<11).map { LockClass.dynamic("live\($0)") }
        let r = try XCTUnwrap(expectOne(.capacityExceeded))
        XCTAssertTrue(r.text.contains("BUG: MAX_LOCKDEP_KEYS too low!"), r.text)
        XCTAssertEqual(live.count, 11)
    }
}
