import Foundation
import XCTest
@testable import Lockdep

/// Adversarial tests of the shortened checked fast paths:
/// - a sleeping acquire tests the state word and the atomic word as one value;
/// - a push that checks no chain (an RCU read section: a recursive read of a map with `.rcu`)
///   still tests the state word (a lowered depth limit and statistics reach it through it);
/// - a mutex's subclass-0 chain element is precomputed per lock, and its wait is published with
///   the owner word its recursion test read;
/// - the task slot is never nil;
/// - a mutex release tests owner and refused acquires as one value.
///
/// Everything goes through the public API (plus `pendingAcquire(of:)`, package-visible).
final class AdversarialSession16Tests: LockdepTestCase {
    private static let readOptions: LockdepMap.Options = [.atomic, .rcu]

    override func tearDown() {
        Lockdep.collectsStatistics = false
        super.tearDown()
    }

    /// A filled cell of a fresh RCU-style map (what `RCUReader`'s read sections use).
    private var keptMaps: [LockdepMap] = []

    private func rcuCell(_ name: String) -> (LockdepMap, LockdepMapCell) {
        let map = LockdepMap(class: .unique(name), options: Self.readOptions)
        keptMaps.append(map)
        let cell = LockdepMapCell.allocate()
        cell.fill(from: map)
        return (map, cell)
    }

    private static func enter(_ cell: LockdepMapCell) {
        Lockdep.acquire(cell, mode: .recursiveRead, options: readOptions)
    }

    private static func leave(_ cell: LockdepMapCell) {
        Lockdep.release(cell, options: readOptions)
    }

    private func count(_ kind: LockdepReport.Kind) -> Int {
        collector.reports.filter { $0.kind == kind }.count
    }

    private var allText: String { collector.reports.map(\.text).joined(separator: "\n") }

    /// Switches validation off the only public way, a capacity report: `maxDepth` lowered to 2
    /// and three spinlocks taken on this thread (the third is refused as too deep). Restores the
    /// default limits afterwards (validation stays off until a reset).
    private func switchValidationOff(held: Int = 0) {
        var limits = LockdepLimits()
        limits.maxDepth = 2
        Lockdep.limits = limits
        let spins = (0..<3).map { CheckedSpinLock(class: .unique("adv16.off.spin\($0)")) }
        for s in spins { s.lock() }
        for s in spins.reversed() { s.unlock() }
        Lockdep.limits = LockdepLimits()
        XCTAssertFalse(Lockdep.isValidating)
        XCTAssertEqual(count(.capacityExceeded), 1, allText)
        XCTAssertEqual(Lockdep.heldLockCount, held)
    }

    // MARK: sleeping in atomic contexts, repeatedly

    /// A mutex taken (by `lock()` and by `withLock`) inside every atomic context the public API
    /// offers, three times each: every attempt is "sleeping function called from invalid
    /// context" (the custom handler sees every report; no cached chain may let a later
    /// attempt through the fast path), and nothing is left held.
    func testSleepingAcquireInEveryAtomicContextIsReportedEveryTime() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let (map, cell) = rcuCell("adv16.sleep.rcu")
        let spin = CheckedSpinLock(class: .unique("adv16.sleep.spin"))
        let contexts: [(String, (() -> Void) -> Void)] = [
            ("spinlock", { body in spin.lock(); body(); spin.unlock() }),
            ("rcu cell section", { body in Self.enter(cell); body(); Self.leave(cell) }),
            ("rcu map section", { body in Lockdep.acquire(map, mode: .recursiveRead); body(); Lockdep.release(map) }),
            ("nested rcu sections", { body in Self.enter(cell); Self.enter(cell); body(); Self.leave(cell); Self.leave(cell) }),
            ("hardirq", { body in Lockdep.withContext(.hardirq) { body() } }),
            ("softirq", { body in Lockdep.withContext(.softirq) { body() } }),
            ("hardirqs off", { body in Lockdep.withInterruptsDisabled(.hardirq) { body() } }),
            ("softirqs off", { body in Lockdep.withInterruptsDisabled(.softirq) { body() } }),
        ]
        for (name, inContext) in contexts {
            // A mutex of its own per context; taken once in process context first so that its
            // process-context chain is cached (the fast path is then eligible everywhere it may run).
            let m = CheckedMutex(class: .unique("adv16.sleep.m.\(name)"))
            m.lock(); m.unlock()
            m.withLock {}
            let irqContext = name == "hardirq" || name == "softirq"
            for attempt in 1...3 {
                collector.clear()
                inContext { m.lock(); m.unlock() }
                // In an interrupt context the first use of a lock taken with interrupts on is
                // also "inconsistent lock state", once.
                let expected: [LockdepReport.Kind] = irqContext && attempt == 1
                    ? [.sleepInInvalidContext, .inconsistentLockState] : [.sleepInInvalidContext]
                XCTAssertEqual(collector.kinds, expected, "\(name), lock(), attempt \(attempt): \(allText)")
                collector.clear()
                inContext { m.withLock {} }
                XCTAssertEqual(collector.kinds, [.sleepInInvalidContext], "\(name), withLock, attempt \(attempt): \(allText)")
                XCTAssertEqual(Lockdep.heldLockCount, 0, "\(name), attempt \(attempt)")
            }
            // Back in process context: silent again, by the fast path.
            collector.clear()
            for _ in 0..<3 { m.lock(); m.unlock(); m.withLock {} }
            XCTAssertTrue(collector.reports.isEmpty, "\(name), afterwards: \(allText)")
            XCTAssertEqual(count(.inconsistentLockState), 0)
            XCTAssertTrue(m.tryLock(), name)
            m.unlock()
        }
        XCTAssertEqual(Lockdep.currentContext, .process)
        XCTAssertEqual(Lockdep.heldLockCount, 0)
    }

    // MARK: read sections and the state word

    /// The depth limit lowered (on this thread, which already has its state and has its
    /// section cached) and then only read sections nested: the fifth must be the one
    /// `capacityExceeded` report of MAX_LOCK_DEPTH, as it is for any other acquire ("exceeding
    /// one produces one capacityExceeded report ... never silently wrong"), not pushed past the
    /// limit silently up to the stack's capacity.
    ///
    /// A new depth limit reaches a thread through `ThreadState.refresh`, on a full acquire after
    /// the state word changed (`Lockdep.limits = ...` bumps its generation): a read section's
    /// push that skipped the state word kept the old limit and pushed past the new one silently.
    func testLoweredDepthLimitStopsNestedReadSections() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let (_, cell) = rcuCell("adv16.depth.rcu")
        Self.enter(cell); Self.leave(cell)            // the thread's state exists, the cell is filled
        var limits = LockdepLimits()
        limits.maxDepth = 4
        Lockdep.limits = limits
        for _ in 0..<8 { Self.enter(cell) }
        let heldAtEight = Lockdep.heldLockCount
        let reportsAtEight = collector.kinds
        for _ in 0..<8 { Self.leave(cell) }
        XCTAssertEqual(reportsAtEight, [.capacityExceeded],
                       "8 nested read sections with maxDepth 4 (held \(heldAtEight)): \(allText)")
        XCTAssertLessThanOrEqual(heldAtEight, 4, "entries held past maxDepth")
        XCTAssertEqual(Lockdep.heldLockCount, 0)
        XCTAssertFalse(collector.kinds.contains(.unlockNotHeld), allText)
    }

    /// The same from another thread: a thread that has run read sections before, after another
    /// thread lowered the limit, nests only read sections.
    func testLoweredDepthLimitStopsNestedReadSectionsOnAnotherThread() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let (_, cell) = rcuCell("adv16.depth2.rcu")
        let cellRef = cell
        let step = StepThread("adv16-reader")
        step.run { Self.enter(cellRef); Self.leave(cellRef) }
        var limits = LockdepLimits()
        limits.maxDepth = 4
        Lockdep.limits = limits
        let held = Locked(0)
        step.run {
            for _ in 0..<8 { Self.enter(cellRef) }
            held.value = Lockdep.heldLockCount
        }
        let reportsAtEight = collector.kinds
        step.run {
            for _ in 0..<8 { Self.leave(cellRef) }
            held.value = Lockdep.heldLockCount
        }
        XCTAssertEqual(reportsAtEight, [.capacityExceeded], allText)
        XCTAssertEqual(held.value, 0)
        step.finish()
    }

    /// The default depth limit (48) reached by read sections alone: one report at the 49th,
    /// the sections past it are not pushed, and closing all 50 leaves nothing held and
    /// reports nothing more.
    func testDepthLimitReachedByReadSections() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let (_, cell) = rcuCell("adv16.depth48.rcu")
        for i in 1...50 {
            Self.enter(cell)
            if i == 48 { XCTAssertEqual(Lockdep.heldLockCount, 48); expectSilent() }
        }
        XCTAssertEqual(collector.kinds, [.capacityExceeded], allText)
        XCTAssertEqual(collector.reports.first?.text.contains("MAX_LOCK_DEPTH"), true, allText)
        XCTAssertLessThanOrEqual(Lockdep.heldLockCount, 48)
        for _ in 0..<50 { Self.leave(cell) }
        XCTAssertEqual(Lockdep.heldLockCount, 0)
        XCTAssertEqual(collector.kinds, [.capacityExceeded], allText)
    }

    /// Statistics on: "acquisitions while collection was on", "one value per class that was
    /// acquired while collection was on". Read sections are acquisitions of their map's class.
    ///
    /// Statistics on sets bit 1 of the state word, which sends every push to the full acquire
    /// (the acquisition counted, the hold timed): a read section's push that skipped the state
    /// word was never counted, and the map's class was missing from `statistics()`.
    func testStatisticsCountReadSections() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let (_, cell) = rcuCell("adv16.stats.rcu")
        Self.enter(cell); Self.leave(cell)            // the thread's state exists, the cell is filled
        let m = CheckedSpinLock(class: .unique("adv16.stats.spin"))
        Lockdep.collectsStatistics = true
        for _ in 0..<5 {
            Self.enter(cell)
            Self.enter(cell)                          // nested
            m.withLock {}
            Self.leave(cell)
            Self.leave(cell)
        }
        Lockdep.collectsStatistics = false
        XCTAssertEqual(Lockdep.heldLockCount, 0)
        expectSilent()
        let stats = Lockdep.statistics()
        let mutexStats = try XCTUnwrap(stats.first { $0.name == "adv16.stats.spin" }, "\(stats)")
        XCTAssertEqual(mutexStats.acquisitions, 5)
        let rcuStats = stats.first { $0.name == "adv16.stats.rcu" }
        XCTAssertNotNil(rcuStats, "read sections taken with statistics on are missing from statistics(): \(stats.map(\.name))")
        XCTAssertEqual(rcuStats?.acquisitions, 10, "read sections counted")
    }

    /// Statistics switched on and off while read sections are open (and nest), with locks
    /// taken inside: every entry is released, nothing bogus reported, and the mutex's
    /// acquisitions while collection was on are counted exactly.
    func testStatisticsToggledWhileSectionsNest() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let (_, cell) = rcuCell("adv16.statstoggle.rcu")
        let m = CheckedMutex(class: .unique("adv16.statstoggle.mutex"))
        let spin = CheckedSpinLock(class: .unique("adv16.statstoggle.spin"))
        Self.enter(cell)
        Lockdep.collectsStatistics = true
        Self.enter(cell)
        spin.withLock {}
        Lockdep.collectsStatistics = false
        Self.enter(cell)
        spin.lock()
        Lockdep.collectsStatistics = true
        Self.enter(cell)                              // inside the spinlock
        Self.leave(cell)
        spin.unlock()
        Self.leave(cell)
        Self.leave(cell)
        m.withLock {}                                 // one section still open: atomic
        XCTAssertEqual(collector.kinds, [.sleepInInvalidContext], allText)
        collector.clear()
        Self.leave(cell)
        m.withLock {}
        m.lock(); m.unlock()
        Lockdep.collectsStatistics = false
        XCTAssertEqual(Lockdep.heldLockCount, 0)
        expectSilent()
        let s = try XCTUnwrap(Lockdep.statistics().first { $0.name == "adv16.statstoggle.mutex" })
        XCTAssertEqual(s.acquisitions, 3)
        XCTAssertEqual(s.holds, 3)
    }

    /// Validation switched off (a capacity report) while read sections are open on this thread
    /// and on another; more sections (and a mutex and a spinlock inside them) taken while it is
    /// off; then validation switched back on by a reset on this thread while the other still
    /// holds sections opened both before and during "off"; then everything closed. No bogus
    /// "bad unlock balance", nothing left held on either thread. Acquires made while validation
    /// is off are not recorded (a section's close while off pops the one opened before, the same
    /// map); the closes that find nothing once it is back on end those untracked holds instead of
    /// being reported as `unlockNotHeld`.
    func testValidationOffAndBackOnWhileSectionsOpenOnTwoThreads() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let (_, cell) = rcuCell("adv16.off.rcu")
        let cellRef = cell
        let m = CheckedMutex(class: .unique("adv16.off.mutex"))
        let spin = CheckedSpinLock(class: .unique("adv16.off.spin"))
        let other = StepThread("adv16-other")
        other.run { Self.enter(cellRef); Self.enter(cellRef) }
        Self.enter(cell)
        switchValidationOff(held: 1)                  // spinlocks inside the section: allowed
        collector.clear()
        // Off: more sections on both threads, locks inside.
        Self.enter(cell)
        spin.lock()
        Self.enter(cell)
        let otherSpin = CheckedSpinLock(class: .unique("adv16.off.otherspin"))
        other.run {
            Self.enter(cellRef)
            otherSpin.lock()
            Self.enter(cellRef)
            Self.leave(cellRef)
            otherSpin.unlock()
        }
        Self.leave(cell)
        spin.unlock()
        m.lock(); m.unlock()                          // in a section, but validation is off
        Self.leave(cell)
        XCTAssertTrue(collector.reports.isEmpty, "validation off: \(allText)")
        // Back on (the reset also clears this thread's held entries: close ours first).
        Self.leave(cell)
        XCTAssertEqual(Lockdep.heldLockCount, 0)
        Lockdep.resetForTesting()
        XCTAssertTrue(Lockdep.isValidating)
        let otherHeld = Locked([Int]())
        other.run {
            otherHeld.value.append(Lockdep.heldLockCount)
            Self.leave(cellRef)                       // opened while off
            Self.leave(cellRef)                       // opened before
            Self.leave(cellRef)
            otherHeld.value.append(Lockdep.heldLockCount)
            // Fresh: a mutex outside any section is silent, inside one reported.
            m.lock(); m.unlock()
            Self.enter(cellRef); m.lock(); m.unlock(); Self.leave(cellRef)
            otherHeld.value.append(Lockdep.heldLockCount)
        }
        XCTAssertEqual(otherHeld.value, [1, 0, 0])
        XCTAssertEqual(collector.kinds, [.sleepInInvalidContext], allText)
        other.finish()
    }

    /// A section opened on another thread while validation is off, closed after validation
    /// came back on (a reset elsewhere): not "bad unlock balance".
    func testSectionOpenedWhileOffClosedAfterOn() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let (_, cell) = rcuCell("adv16.offon.rcu")
        let cellRef = cell
        let other = StepThread("adv16-offon")
        other.run { Self.enter(cellRef); Self.leave(cellRef) }
        switchValidationOff()
        collector.clear()
        other.run { Self.enter(cellRef) }
        Lockdep.resetForTesting()
        let held = Locked(-1)
        other.run { Self.leave(cellRef); held.value = Lockdep.heldLockCount }
        XCTAssertEqual(held.value, 0)
        expectSilent()
        other.finish()
    }

    /// A report handler that itself opens read sections and takes locks while a report is
    /// being delivered (this thread's fast paths off, the read section's push not): balanced,
    /// nothing left held, no report from inside the handler, and the fast paths work after.
    func testReadSectionsInsideTheReportHandler() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let (_, cell) = rcuCell("adv16.handler.rcu")
        let cellRef = cell
        let inner = CheckedSpinLock(class: .unique("adv16.handler.spin"))
        let depthsInHandler = Locked([Int]())
        // A handler that nests sections and a spinlock.
        Lockdep.reportHandler = .custom { _ in
            let before = Lockdep.heldLockCount
            Self.enter(cellRef); Self.enter(cellRef)
            inner.lock(); inner.unlock()
            Self.leave(cellRef); Self.leave(cellRef)
            depthsInHandler.withLock { $0.append(before); $0.append(Lockdep.heldLockCount) }
        }
        let m = CheckedMutex(class: .unique("adv16.handler.mutex"))
        for _ in 0..<3 {
            Self.enter(cell)
            m.lock(); m.unlock()                      // reported: the handler runs inside
            Self.leave(cell)
        }
        collector.install()
        XCTAssertEqual(depthsInHandler.value.count, 6, "three reports delivered")
        for pair in stride(from: 0, to: depthsInHandler.value.count, by: 2) {
            XCTAssertEqual(depthsInHandler.value[pair], depthsInHandler.value[pair + 1], "\(depthsInHandler.value)")
        }
        XCTAssertEqual(Lockdep.heldLockCount, 0)
        Self.enter(cell); inner.lock(); inner.unlock(); Self.leave(cell)
        m.lock(); m.unlock()
        expectSilent()
    }

    // MARK: the mutex pair

    /// `lock()` twice on one thread: the second is refused and reported; the two `unlock()`s
    /// that follow consume the refusal and release the mutex. Three rounds (the refusal and its
    /// release must not leave the fast release path thinking the mutex is still refused, nor
    /// the owner word set).
    func testRecursiveLockRefusedThenUnlockedTwice() {
        let m = CheckedMutex(class: .unique("adv16.rec.mutex"))
        let probe = StepThread("adv16-probe")
        for round in 1...3 {
            collector.clear()
            m.lock()
            m.lock()
            XCTAssertEqual(collector.kinds, [.recursiveLocking], "round \(round): \(allText)")
            // (The held-lock count is 0 with checks compiled out; the probe below tests the hold in every build.)
            if Lockdep.checksCompiledIn { XCTAssertEqual(Lockdep.heldLockCount, 1) }
            m.unlock()
            if Lockdep.checksCompiledIn {
                XCTAssertEqual(Lockdep.heldLockCount, 1, "round \(round): the first unlock consumes the refusal")
            }
            let stillHeld = Locked(true)
            probe.run { if m.tryLock() { stillHeld.value = false; m.unlock() } }
            XCTAssertTrue(stillHeld.value, "round \(round): the first unlock released the mutex")
            m.unlock()
            XCTAssertEqual(Lockdep.heldLockCount, 0)
            let free = Locked(false)
            probe.run { if m.tryLock() { free.value = true; m.unlock() } }
            XCTAssertTrue(free.value, "round \(round): not released")
            XCTAssertEqual(collector.kinds, [.recursiveLocking], "round \(round): \(allText)")
        }
        // A third unlock: not held.
        collector.clear()
        m.lock(); m.unlock()
        m.unlock()
        XCTAssertEqual(collector.kinds.count, 1, allText)
        XCTAssertTrue([.unlockNotHeld, .doubleUnlock].contains(collector.kinds.first), allText)
        XCTAssertEqual(Lockdep.heldLockCount, 0)
        probe.finish()
    }

    /// `withLock` inside `withLock` of the same mutex: reported, the inner body runs without
    /// deadlock, and the mutex is free after, three times.
    func testWithLockRecursion() {
        let m = CheckedMutex(class: .unique("adv16.wl.mutex"))
        for round in 1...3 {
            collector.clear()
            var ran = false
            // (The held-lock count is 0 with checks compiled out.)
            m.withLock { m.withLock { ran = true } ; if Lockdep.checksCompiledIn { XCTAssertEqual(Lockdep.heldLockCount, 1) } }
            XCTAssertTrue(ran)
            XCTAssertEqual(collector.kinds, [.recursiveLocking], "round \(round): \(allText)")
            XCTAssertEqual(Lockdep.heldLockCount, 0)
            XCTAssertTrue(m.tryLock(), "round \(round)")
            m.unlock()
            // lock() inside withLock, unlock() inside too.
            collector.clear()
            m.withLock { m.lock(); m.unlock() }
            XCTAssertEqual(collector.kinds, [.recursiveLocking], "round \(round): \(allText)")
            XCTAssertTrue(m.tryLock(), "round \(round)")
            m.unlock()
        }
        XCTAssertEqual(Lockdep.heldLockCount, 0)
    }

    /// An unlock by a thread that does not hold the mutex: reported, refused (the mutex stays
    /// held), and the owner's own unlock then works; repeated so the fast release runs cached.
    func testUnlockByNonOwner() {
        let m = CheckedMutex(class: .unique("adv16.nonowner.mutex"))
        let other = StepThread("adv16-nonowner")
        for round in 1...3 {
            collector.clear()
            m.lock()
            other.run { m.unlock() }
            XCTAssertEqual(collector.kinds.count, 1, "round \(round): \(allText)")
            XCTAssertTrue([.unlockFromOtherThread, .unlockNotHeld].contains(collector.kinds.first), allText)
            let stolen = Locked(false)
            other.run { if m.tryLock() { stolen.value = true; m.unlock() } }
            XCTAssertFalse(stolen.value, "round \(round): the non-owner's unlock released the mutex")
            if Lockdep.checksCompiledIn { XCTAssertEqual(Lockdep.heldLockCount, 1) }   // 0 with checks compiled out
            m.unlock()
            XCTAssertEqual(Lockdep.heldLockCount, 0)
            XCTAssertEqual(collector.kinds.count, 1, "round \(round): \(allText)")
        }
        other.finish()
    }

    /// `lock(subclass:)` and `lock()` of one class nested (repeatedly, so the second round runs
    /// on cached chains and the precomputed subclass-0 element): silent. A real AB-BA between
    /// two classes across subclasses: one circular-dependency report.
    func testSubclassesAgainstSubclassZero() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let cls = LockClass.unique("adv16.sub.cls")
        let parent = CheckedMutex(class: cls), child = CheckedMutex(class: cls)
        for _ in 0..<3 {
            parent.lock(); child.lock(subclass: 1); child.unlock(); parent.unlock()
            parent.withLock { child.lock(subclass: 1); child.unlock() }
        }
        for sub in 1...7 {
            parent.lock(); child.lock(subclass: sub); child.unlock(); parent.unlock()
        }
        expectSilent()
        XCTAssertEqual(Lockdep.heldLockCount, 0)
        // Same class, subclass 0 inside subclass 0: recursive locking (a different instance).
        parent.lock(); child.lock()
        XCTAssertEqual(collector.kinds, [.recursiveLocking], allText)
        child.unlock(); parent.unlock()
        XCTAssertEqual(Lockdep.heldLockCount, 0)
        collector.clear()
        // AB-BA across subclasses of two classes.
        let a = CheckedMutex(class: .unique("adv16.sub.A")), b = CheckedMutex(class: .unique("adv16.sub.B"))
        for _ in 0..<2 { a.lock(); b.lock(subclass: 2); b.unlock(); a.unlock() }
        expectSilent()
        b.lock(subclass: 2); a.lock()
        XCTAssertEqual(collector.kinds, [.circularDependency], allText)
        a.unlock(); b.unlock()
        // Subclass 0 of B against A: no dependency recorded for B/0, silent.
        collector.clear()
        b.lock(); a.lock(); a.unlock(); b.unlock()
        expectSilent()
        // ...and now A -> B/0 closes a real cycle.
        a.lock(); b.lock(); b.unlock(); a.unlock()
        XCTAssertEqual(collector.kinds, [.circularDependency], allText)
        XCTAssertEqual(Lockdep.heldLockCount, 0)
    }

    /// Many dynamic classes created and freed while other locks stay alive: a class id reused
    /// must not inherit the freed class's dependencies (nor its precomputed element point at
    /// another class's name): the reverse order against a fresh class is silent, and a real
    /// inversion against a live one names the live classes.
    func testDynamicClassesFreedAndReused() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let outer = CheckedMutex(class: .unique("adv16.dyn.outer"))
        for i in 0..<64 {
            let m = CheckedMutex(class: .dynamic("adv16.dyn.tmp\(i)"))
            outer.lock(); m.lock(); m.unlock(); outer.unlock()
            m.lock(); m.unlock()
        }
        expectSilent()
        for i in 0..<8 {
            let fresh = CheckedMutex(class: .dynamic("adv16.dyn.fresh\(i)"))
            fresh.lock(); outer.lock(); outer.unlock(); fresh.unlock()
        }
        expectSilent()
        let live = CheckedMutex(class: .dynamic("adv16.dyn.live"))
        outer.lock(); live.lock(); live.unlock(); outer.unlock()
        live.lock(); outer.lock(); outer.unlock(); live.unlock()
        let r = expectOne(.circularDependency)
        XCTAssertEqual(Set(r?.classes ?? []), ["adv16.dyn.outer", "adv16.dyn.live"], r?.text ?? "")
        XCTAssertEqual(Lockdep.heldLockCount, 0)
    }

    // MARK: pending acquires

    /// A thread blocked on a mutex (by `lock()`, by `withLock`, by `lock(subclass:)`):
    /// `pendingAcquire(of:)` names the lock and its holder.
    func testPendingAcquireNamesLockAndHolder() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        let m = CheckedMutex(class: .unique("adv16.pending.mutex"))
        for how in ["lock()", "withLock", "lock(subclass: 3)"] {
            let holderThread = Locked<pthread_t?>(nil)
            let waiterThread = Locked<pthread_t?>(nil)
            let holding = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
            let done = DispatchSemaphore(value: 0)
            let holder = Thread {
                Lockdep.currentThreadName = "adv16-holder"
                holderThread.value = pthread_self()
                m.lock(); holding.signal(); release.wait(); m.unlock()
                done.signal()
            }
            holder.start()
            holding.wait()
            let waiter = Thread {
                Lockdep.currentThreadName = "adv16-waiter"
                waiterThread.value = pthread_self()
                // Warm the chain: the fast path is what publishes the precomputed node.
                switch how {
                case "lock()": m.lock(); m.unlock()
                case "withLock": m.withLock {}
                default: m.lock(subclass: 3); m.unlock()
                }
                done.signal()
            }
            waiter.start()
            var pending: Lockdep.PendingAcquire?
            let deadline = Date().addingTimeInterval(5)
            while pending == nil && Date() < deadline {
                if let w = waiterThread.value { pending = Lockdep.pendingAcquire(of: w) }
                if pending == nil { usleep(1000) }
            }
            let p = try XCTUnwrap(pending, "\(how): no pending acquire published")
            XCTAssertTrue(p.lockName.hasPrefix("adv16.pending.mutex"), "\(how): \(p.lockName)")
            if how.contains("subclass") { XCTAssertTrue(p.lockName.contains("/3"), "\(how): \(p.lockName)") }
            XCTAssertEqual(p.holderName, "adv16-holder", how)
            XCTAssertTrue(p.holder.map { pthread_equal($0, holderThread.value!) != 0 } ?? false, how)
            release.signal()
            done.wait(); done.wait()
        }
        expectSilent()
    }

    // MARK: tasks

    /// A lock held across an `await` and released on another thread is reported (twice: the
    /// second run goes through cached chains), and refused.
    func testHeldAcrossAwaitReleasedElsewhereIsReportedEveryTime() async {
        let first = ThreadExecutor("adv16-exec-a")
        let second = ThreadExecutor("adv16-exec-b")
        let mutex = CheckedMutex(class: .unique("adv16.await.mutex"))
        for round in 1...3 {
            collector.clear()
            await Task.detached {
                await withTaskExecutorPreference(first) { mutex.lock() }
                await withTaskExecutorPreference(second) { mutex.unlock() }
            }.value
            // With checks compiled out there are no task holds: every build refuses and reports
            // the other thread's release through the owner word.
            XCTAssertEqual(collector.kinds, Lockdep.checksCompiledIn ? [.lockHeldAcrossSuspension] : [.unlockFromOtherThread],
                           "round \(round): \(allText)")
            await withTaskExecutorPreference(first) { mutex.unlock() }
            XCTAssertTrue(mutex.tryLock(), "round \(round)")
            mutex.unlock()
        }
        first.stop()
        second.stop()
    }

    /// Another task takes a suspended task's hold on the same thread, twice: each time
    /// "held across a suspension point", refused.
    func testAnotherTaskOnTheSameThreadIsReportedEveryTime() async {
        let executor = ThreadExecutor("adv16-exec-x")
        let mutex = CheckedMutex(class: .unique("adv16.same.mutex"))
        for round in 1...2 {
            collector.clear()
            let resumeHolder = await retakeSuspendedHold(mutex, on: executor)
            // With checks compiled out there are no task holds: every build's owner word sees the
            // thread that holds the mutex, and refuses the acquire as recursive.
            XCTAssertEqual(collector.kinds, Lockdep.checksCompiledIn ? [.lockHeldAcrossSuspension] : [.recursiveLocking],
                           "round \(round): \(allText)")
            await resumeHolder()
            XCTAssertEqual(collector.kinds.count, 1, "round \(round): \(allText)")
            XCTAssertTrue(mutex.tryLock(), "round \(round)")
            mutex.unlock()
        }
        executor.stop()
    }

    /// Many tasks on the cooperative pool and on a custom executor taking short mutex and
    /// spinlock sections (no await inside), with read sections around: silent, and nothing left
    /// held on any thread (a final lock from each executor thread works).
    func testShortSectionsInManyTasksAreSilent() async {
        let (_, cell) = rcuCell("adv16.tasks.rcu")
        let cellRef = cell
        let m = CheckedMutex(class: .unique("adv16.tasks.mutex"))
        let spin = CheckedSpinLock(class: .unique("adv16.tasks.spin"))
        let counter = Locked(0)
        let executor = ThreadExecutor("adv16-exec-pool")
        await withTaskGroup(of: Void.self) { group in
            for i in 0..<64 {
                group.addTask {
                    let body = {
                        for _ in 0..<20 {
                            m.withLock { counter.withLock { $0 += 1 } }
                            Self.enter(cellRef); spin.withLock {}; Self.leave(cellRef)
                            m.lock(); spin.lock(); spin.unlock(); m.unlock()
                        }
                    }
                    if i % 2 == 0 { body() } else { await withTaskExecutorPreference(executor) { body() } }
                    await Task.yield()
                    if i % 2 == 0 { body() } else { await withTaskExecutorPreference(executor) { body() } }
                }
            }
        }
        XCTAssertEqual(counter.value, 64 * 40)
        XCTAssertTrue(collector.reports.isEmpty, allText)
        XCTAssertTrue(m.tryLock()); m.unlock()
        executor.stop()
    }

    // MARK: fork

    /// `fork()` with a mutex held by the forking thread (taken by the fast path, its chain
    /// cached) and inside an open read section: in the child the one thread still holds both;
    /// it releases them through the fast paths, takes them again (a sleeping acquire inside
    /// the section still reported), and ends with nothing held. A mutex held by another
    /// parent thread at the fork stays held in the child (tryLock fails, no report).
    func testForkWithMutexHeld() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        try XCTSkipIf(runningUnderThreadSanitizer, "ThreadSanitizer reports fork() in a multithreaded process")
        let (_, cell) = rcuCell("adv16.fork.rcu")
        let m = CheckedMutex(class: .unique("adv16.fork.mutex"))
        let foreign = CheckedMutex(class: .unique("adv16.fork.foreign"))
        for _ in 0..<2 { m.lock(); m.unlock() }
        let holding = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
        let done = DispatchSemaphore(value: 0)
        Thread { foreign.lock(); holding.signal(); release.wait(); foreign.unlock(); done.signal() }.start()
        holding.wait()
        m.lock()
        Self.enter(cell)
        let collector = self.collector
        let clean = childExitsCleanly {
            guard Lockdep.heldLockCount == 2, collector.reports.isEmpty else { return false }
            Self.leave(cell)
            m.unlock()
            guard Lockdep.heldLockCount == 0, collector.reports.isEmpty else { return false }
            for _ in 0..<3 { m.lock(); m.unlock(); m.withLock {} }
            guard collector.reports.isEmpty else { return false }
            Self.enter(cell); m.lock(); m.unlock(); Self.leave(cell)
            guard collector.kinds == [.sleepInInvalidContext] else { return false }
            collector.clear()
            guard !foreign.tryLock(), collector.reports.isEmpty, Lockdep.heldLockCount == 0 else { return false }
            return true
        }
        Self.leave(cell)
        m.unlock()
        release.signal()
        done.wait()
        XCTAssertTrue(clean, "the child's held mutex or read section misbehaved after fork")
        XCTAssertEqual(Lockdep.heldLockCount, 0)
        expectSilent()
    }
}
