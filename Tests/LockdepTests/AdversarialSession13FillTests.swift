import Foundation
import Synchronization
import XCTest
import Lockdep

/// Adversarial tests of `LockdepMapCell.fill(from:)` (one claimer, others wait and compare)
/// from the public API: fills racing fills, fills racing `acquire(_:mode:options:ifEmpty:)`,
/// fills nested in fills, fork() during racing fills, and different maps racing (trap, in
/// forked children only).
final class AdversarialSession13FillTests: LockdepTestCase {
    final class Gate: Sendable {
        let go = Atomic<Bool>(false)
        let stop = Atomic<Bool>(false)
        let done = Atomic<Int>(0)
        let failures = Atomic<Int>(0)
        let ifEmptyCalls = Atomic<Int>(0)
    }

    /// Runs `threads` bodies released together; returns when all returned (false on timeout).
    static func race(_ threads: Int, timeout: Double = 60, _ body: @escaping @Sendable (Int, Gate) -> Void) -> (Bool, Gate) {
        let gate = Gate()
        for i in 0..<threads {
            Thread {
                while !gate.go.load(ordering: .acquiring) {}
                body(i, gate)
                gate.done.add(1, ordering: .releasing)
            }.start()
        }
        usleep(2_000)
        gate.go.store(true, ordering: .releasing)
        let deadline = Date().addingTimeInterval(timeout)
        while gate.done.load(ordering: .acquiring) < threads {
            if Date() > deadline { return (false, gate) }
            sched_yield()
        }
        return (true, gate)
    }

    // MARK: same map, many fillers

    /// Attack 1: eight threads fill each of many fresh cells with one map at once; every fill
    /// returns, the cell is filled, and each thread can acquire and release it (both the rcu
    /// read fast path and a plain read/write map).
    func testManyThreadsFillOneCellWithTheSameMap() {
        let rcu = LockdepMap("adv13fill.same.rcu", key: "adv13fill.same.rcu", options: [.atomic, .rcu])
        let plain = LockdepMap("adv13fill.same.plain", key: "adv13fill.same.plain")
        for round in 0..<40 {
            let rcuCell = LockdepMapCell.allocate()
            let plainCell = LockdepMapCell.allocate()
            let (finished, gate) = Self.race(8) { _, gate in
                rcuCell.fill(from: rcu)
                plainCell.fill(from: plain)
                guard rcuCell.isFilled, plainCell.isFilled else { gate.failures.add(1, ordering: .relaxed); return }
                Lockdep.acquire(rcuCell, mode: .recursiveRead, options: [.atomic, .rcu])
                if !Lockdep.isHeld(rcu, mode: .read) { gate.failures.add(1, ordering: .relaxed) }
                Lockdep.acquire(plainCell, mode: .read)
                if !Lockdep.isHeld(plain, mode: .read) { gate.failures.add(1, ordering: .relaxed) }
                Lockdep.release(plainCell)
                Lockdep.release(rcuCell, options: [.atomic, .rcu])
                // (With checks compiled out `isHeld` is always true; the fills are tested in every build.)
                if Lockdep.checksCompiledIn, Lockdep.isHeld(rcu) || Lockdep.isHeld(plain) {
                    gate.failures.add(1, ordering: .relaxed)
                }
            }
            XCTAssertTrue(finished, "round \(round): a filler of the same map never returned")
            XCTAssertEqual(gate.failures.load(ordering: .acquiring), 0, "round \(round)")
            XCTAssertTrue(rcuCell.isFilled && plainCell.isFilled)
            // A late fill with the same map is still fine.
            rcuCell.fill(from: rcu)
            Lockdep.acquire(plainCell, mode: .write)
            XCTAssertTrue(Lockdep.isHeld(plain, mode: .write))
            Lockdep.release(plainCell)
        }
        XCTAssertEqual(collector.kinds, [], "reports: \(collector.reports)")
    }

    // MARK: fills racing acquire(ifEmpty:)

    /// Attack 2: on one fresh cell, half the threads fill it and the other half acquire it
    /// with `ifEmpty: { cell.fill(from: map) }`; every acquire holds the map, every release
    /// drops it, and no report is made.
    func testFillsRaceAcquireIfEmpty() {
        let rcu = LockdepMap("adv13fill.ifempty.rcu", key: "adv13fill.ifempty.rcu", options: [.atomic, .rcu])
        let plain = LockdepMap("adv13fill.ifempty.plain", key: "adv13fill.ifempty.plain", options: [.atomic])
        var ifEmptyTotal = 0
        for round in 0..<40 {
            let rcuCell = LockdepMapCell.allocate()
            let plainCell = LockdepMapCell.allocate()
            let (finished, gate) = Self.race(6) { i, gate in
                if i % 2 == 0 {
                    plainCell.fill(from: plain)
                    rcuCell.fill(from: rcu)
                    return
                }
                for _ in 0..<3 {
                    Lockdep.acquire(rcuCell, mode: .recursiveRead, options: [.atomic, .rcu], ifEmpty: {
                        gate.ifEmptyCalls.add(1, ordering: .relaxed)
                        rcuCell.fill(from: rcu)
                    })
                    Lockdep.acquire(plainCell, mode: .write, options: [.atomic], ifEmpty: {
                        gate.ifEmptyCalls.add(1, ordering: .relaxed)
                        plainCell.fill(from: plain)
                    })
                    if !Lockdep.isHeld(rcu, mode: .read) || !Lockdep.isHeld(plain, mode: .write) {
                        gate.failures.add(1, ordering: .relaxed)
                    }
                    Lockdep.release(plainCell, options: [.atomic])
                    Lockdep.release(rcuCell, options: [.atomic, .rcu])
                    // (With checks compiled out `isHeld` is always true, and an acquire neither
                    // holds nor calls `ifEmpty`; the racing fills are tested in every build.)
                    if Lockdep.checksCompiledIn, Lockdep.isHeld(rcu) || Lockdep.isHeld(plain) {
                        gate.failures.add(1, ordering: .relaxed)
                    }
                }
            }
            XCTAssertTrue(finished, "round \(round): a fill or an acquire never returned")
            XCTAssertEqual(gate.failures.load(ordering: .acquiring), 0, "round \(round)")
            XCTAssertTrue(rcuCell.isFilled && plainCell.isFilled)
            ifEmptyTotal += gate.ifEmptyCalls.load(ordering: .acquiring)
        }
        // Each acquiring thread calls ifEmpty at most once per cell per round (only while empty).
        XCTAssertLessThanOrEqual(ifEmptyTotal, 40 * 3 * 2)
        XCTAssertEqual(collector.kinds, [], "reports: \(collector.reports)")
    }

    // MARK: fills nested in fills

    enum Nested {
        static let outerCell = LockdepMapCell.allocate()
        static let innerCell = LockdepMapCell.allocate()
        /// A map whose creation fills its cell, and on the way creates (and fills) another
        /// map's cell through an acquire's ifEmpty.
        static let outer: LockdepMap = {
            Lockdep.acquire(innerCell, mode: .recursiveRead, options: [.atomic, .rcu], ifEmpty: { innerCell.fill(from: inner) })
            Lockdep.release(innerCell, options: [.atomic, .rcu])
            let map = LockdepMap("adv13fill.nested.outer", key: "adv13fill.nested.outer", options: [.atomic])
            outerCell.fill(from: map)
            outerCell.fill(from: map)
            return map
        }()
        static let inner: LockdepMap = {
            let map = LockdepMap("adv13fill.nested.inner", key: "adv13fill.nested.inner", options: [.atomic, .rcu])
            innerCell.fill(from: map)
            return map
        }()
    }

    /// Attack 3: threads race to acquire a cell whose ifEmpty runs a `static let` creating the
    /// map, whose initializer fills that cell (twice) after acquiring another cell whose own
    /// ifEmpty creates and fills it; other threads fill the cells from the maps directly.
    func testFillsNestedInsideMapCreationRacingAcquires() {
        let (finished, gate) = Self.race(6) { i, gate in
            for _ in 0..<50 {
                if i == 0 {
                    Nested.innerCell.fill(from: Nested.inner)
                    Nested.outerCell.fill(from: Nested.outer)
                    continue
                }
                Lockdep.acquire(Nested.outerCell, mode: .write, options: [.atomic], ifEmpty: { _ = Nested.outer })
                Lockdep.acquire(Nested.innerCell, mode: .recursiveRead, options: [.atomic, .rcu], ifEmpty: {
                    Nested.innerCell.fill(from: Nested.inner)
                })
                if !Lockdep.isHeld(Nested.outer, mode: .write) || !Lockdep.isHeld(Nested.inner, mode: .read) {
                    gate.failures.add(1, ordering: .relaxed)
                }
                Lockdep.release(Nested.innerCell, options: [.atomic, .rcu])
                Lockdep.release(Nested.outerCell, options: [.atomic])
            }
        }
        XCTAssertTrue(finished, "a nested fill never returned")
        XCTAssertEqual(gate.failures.load(ordering: .acquiring), 0)
        XCTAssertTrue(Nested.outerCell.isFilled && Nested.innerCell.isFilled)
        // The inner map was acquired inside the outer's creation, not under a held lock: no cycle.
        XCTAssertFalse(collector.kinds.contains(.assertionFailed), "reports: \(collector.reports)")
    }

    /// Attack 3b: an ifEmpty that fills the cell, then acquires and releases the same cell
    /// (now filled) inside itself, then fills again: returns and leaves one hold.
    func testIfEmptyReentersTheSameCell() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let map = LockdepMap("adv13fill.reenter", key: "adv13fill.reenter", options: [.atomic, .rcu])
        let cell = LockdepMapCell.allocate()
        var calls = 0
        Lockdep.acquire(cell, mode: .recursiveRead, options: [.atomic, .rcu], ifEmpty: {
            calls += 1
            cell.fill(from: map)
            Lockdep.acquire(cell, mode: .recursiveRead, options: [.atomic, .rcu], ifEmpty: { calls += 100 })
            Lockdep.release(cell, options: [.atomic, .rcu])
            cell.fill(from: map)
        })
        XCTAssertEqual(calls, 1)
        XCTAssertTrue(Lockdep.isHeld(map, mode: .read))
        Lockdep.release(cell, options: [.atomic, .rcu])
        XCTAssertFalse(Lockdep.isHeld(map))
        XCTAssertEqual(collector.kinds, [], "reports: \(collector.reports)")
    }

    // MARK: different maps: trap, in children only

    /// Forks `count` children each running `body`; asserts they all trapped (none passed, none hung).
    func assertChildrenTrap(_ what: String, count: Int = 6, _ body: () -> Void) {
        let children = forkChildren(count, alarm: 10, timeout: .seconds(20)) {
            Lockdep.reportHandler = .trap
            // Several threads may trap at once: each would start the Swift backtracer, and an
            // orphaned one keeps the test runner's output pipe open. Die by the signal instead.
            signal(SIGILL, SIG_DFL)
            signal(SIGTRAP, SIG_DFL)
            body()
        }
        XCTAssertEqual(children.hung, 0, "\(what): a child hung")
        XCTAssertEqual(children.exitedZero, 0, "\(what): a fill with a different map passed silently")
        XCTAssertEqual(children.failedStatuses.filter { [SIGILL, SIGTRAP].contains($0 & 0x7F) }.count, count,
                       "\(what): statuses \(children.failedStatuses)")
    }

    /// Attack 5: different maps on one cell trap, however they meet: many racing threads
    /// alternating two maps; two maps of one class (same class id, different instances);
    /// a late sequential fill; a fill racing an acquire whose ifEmpty fills another map.
    func testDifferentMapsTrapInChildren() throws {
        try XCTSkipIf(runningUnderThreadSanitizer, "ThreadSanitizer does not support threads created after fork()")
        try XCTSkipIf(runningUnderAddressSanitizer, "the child's trap is ASan's to report")
        let a = LockdepMap("adv13fill.diff.a", key: "adv13fill.diff.a", options: [.atomic, .rcu])
        let b = LockdepMap("adv13fill.diff.b", key: "adv13fill.diff.b", options: [.atomic, .rcu])
        let shared = LockClass("adv13fill.diff.class", key: "adv13fill.diff.class")
        let c1 = LockdepMap(class: shared, options: [.atomic])
        let c2 = LockdepMap(class: shared, options: [.atomic])

        assertChildrenTrap("8 threads, two maps") {
            let cell = LockdepMapCell.allocate()
            _ = Self.race(8) { i, _ in cell.fill(from: i % 2 == 0 ? a : b) }
        }
        assertChildrenTrap("one class, two instances") {
            let cell = LockdepMapCell.allocate()
            _ = Self.race(4) { i, _ in cell.fill(from: i % 2 == 0 ? c1 : c2) }
        }
        assertChildrenTrap("sequential", count: 2) {
            let cell = LockdepMapCell.allocate()
            cell.fill(from: a)
            cell.fill(from: b)
        }
        assertChildrenTrap("fill racing acquire ifEmpty") {
            let cell = LockdepMapCell.allocate()
            _ = Self.race(4) { i, _ in
                if i % 2 == 0 {
                    cell.fill(from: a)
                } else {
                    Lockdep.acquire(cell, mode: .recursiveRead, options: [.atomic, .rcu], ifEmpty: { cell.fill(from: b) })
                    Lockdep.release(cell, options: [.atomic, .rcu])
                }
            }
            // Whoever won, the other map's fill must have trapped; if ifEmpty never ran, fill b now.
            cell.fill(from: b)
            cell.fill(from: a)
        }
    }
}
