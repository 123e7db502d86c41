@_exported import TestSupport
import Foundation
import XCTest
@testable import Lockdep

/// The calling thread's held entries' chain keys as stored (0: deferred, an RCU read section's).
func storedChainKeys() -> [UInt64] {
    let t = ThreadState.current()
    return (0..<t.pointee.depth).map { t.pointee.held[$0].chainKey }
}

/// The same keys computed eagerly from the held entries' elements.
func eagerChainKeys() -> [UInt64] {
    let t = ThreadState.current()
    var key = Engine.chainSeed
    return (0..<t.pointee.depth).map { i in
        let e = t.pointee.held[i]
        key = Engine.mix(key, Engine.element(node: e.node, mode: e.mode, irq: e.irqState, flags: e.flags,
                                             nested: e.nest != nil))
        return key
    }
}

/// Base class: fresh validator state and a collecting handler per test.
class LockdepTestCase: XCTestCase {
    let collector = LockdepReportCollector()

    override func setUp() {
        super.setUp()
        Lockdep.limits = LockdepLimits()
        Lockdep.resetForTesting()
        collector.install()
    }

    override func tearDown() {
        Lockdep.resetForTesting()
        Lockdep.reportHandler = .trap
        super.tearDown()
    }

    /// Asserts exactly one report, of `kind`, and returns it.
    @discardableResult
    func expectOne(_ kind: LockdepReport.Kind, file: StaticString = #filePath, line: UInt = #line) -> LockdepReport? {
        let reports = collector.reports
        XCTAssertEqual(reports.map(\.kind), [kind], reports.map(\.text).joined(separator: "\n"), file: file, line: line)
        return reports.first { $0.kind == kind }
    }

    func expectSilent(file: StaticString = #filePath, line: UInt = #line) {
        let reports = collector.reports
        XCTAssertTrue(reports.isEmpty, reports.map(\.text).joined(separator: "\n"), file: file, line: line)
    }

    /// Switches validation off the only public way, a capacity report (`maxDepth` lowered to 2
    /// and three spinlocks taken on this thread), then restores the default limits (validation
    /// stays off until a reset). Clears the collected reports.
    func switchValidationOff(file: StaticString = #filePath, line: UInt = #line) {
        collector.clear()
        var limits = LockdepLimits()
        limits.maxDepth = 2
        Lockdep.limits = limits
        let spins = (0..<3).map { CheckedSpinLock(class: .unique("switchValidationOff.spin\($0)")) }
        for s in spins { s.lock() }
        for s in spins.reversed() { s.unlock() }
        Lockdep.limits = LockdepLimits()
        XCTAssertFalse(Lockdep.isValidating, file: file, line: line)
        XCTAssertEqual(collector.reports.map(\.kind), [.capacityExceeded], file: file, line: line)
        collector.clear()
    }
}

/// A helper thread that runs submitted steps one at a time, in order (so a test can interleave
/// two threads deterministically: "T1 locks", then "T0 unlocks", then "T1 unlocks").
final class StepThread: @unchecked Sendable {
    private let lock = NSCondition()
    private var steps: [@Sendable () -> Void] = []
    private var done = 0
    private var submitted = 0
    private var stop = false
    private var thread = pthread_t()

    init(_ name: String) {
        thread = startJoinableThread(named: name) { [self] in
            Lockdep.currentThreadName = name
            while true {
                lock.lock()
                while steps.isEmpty && !stop { lock.wait() }
                if steps.isEmpty && stop { lock.unlock(); return }
                let step = steps.removeFirst()
                lock.unlock()
                step()
                lock.lock(); done += 1; lock.broadcast(); lock.unlock()
            }
        }
    }

    /// Runs `step` on the thread and waits for it.
    func run(_ step: @escaping @Sendable () -> Void) {
        lock.lock()
        steps.append(step)
        submitted += 1
        let target = submitted
        lock.broadcast()
        while done < target { lock.wait() }
        lock.unlock()
    }

    /// Ends the thread and joins it: its thread-exit checks (a lock still held) have run and
    /// reported into this test.
    func finish() {
        lock.lock(); stop = true; lock.broadcast(); lock.unlock()
        pthread_join(thread, nil)
    }
}
