import Foundation
import RCU
import RCUTestSupport
import Synchronization
import Testing
import XCTest

/// The policy the storms run under, and how far over its mark the backlog may go: two retiring
/// threads may each queue up to 64 callbacks between checks, plus one each in flight.
private let small = RCUBacklogPolicy(highWaterMark: 2_000, lowWaterMark: 1_000)
private let slack = 2 * 64 + 2 + 64

/// The backlog policy: retire storms stay under the high-water mark (plus the slack of the
/// shim's every-64th-callback check) and reclaim every object exactly once; a retire that may
/// not wait does not; tasks suspend instead of blocking.
final class BacklogPolicyTests: XCTestCase {
    /// A call_rcu callback that retires past the mark does not wait for its own worker.
    func testRetireInsideCallbackDoesNotWait() {
        RCUMemb.backlogPolicy = RCUBacklogPolicy(highWaterMark: 100, lowWaterMark: 50, maximumWaitWithoutProgress: .seconds(60))
        defer { RCUMemb.backlogPolicy = .standard }
        let ledger = Ledger()
        let before = RCUMemb.backlog
        RCUMemb.retire {
            for index in 0..<1_000 { RCUMemb.retire(Tracked(id: index, ledger: ledger)) }
        }
        let start = ContinuousClock.now
        RCUMemb.barrier()
        RCUMemb.barrier()
        XCTAssertLessThan(start.duration(to: .now), .seconds(5))
        XCTAssertEqual(ledger.freedCount, 1_000)
        XCTAssertEqual(RCUMemb.backlog.throttledRetires, before.throttledRetires, "no wait in the callback")
    }

    /// Tasks retiring past the mark suspend (the pool keeps running other tasks), stay bounded,
    /// and every object is reclaimed once.
    func testThrottledRetireSuspendsTasks() async throws {
        for throttle in [RCUBacklogPolicy.Throttle.waitForDrain, .reclaimInline] {
            var policy = small
            policy.throttle = throttle
            RCUMemb.backlogPolicy = policy
            defer { RCUMemb.backlogPolicy = .standard }
            let before = RCUMemb.backlog
            let ledger = Ledger()
            let count = 40_000
            let probe = TaskProbe()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {     // a task that must keep getting a pool thread
                    while probe.retiring.load(ordering: .relaxed) {
                        probe.ticks.add(1, ordering: .relaxed)
                        try await Task.sleep(for: .milliseconds(1))
                    }
                }
                try await withThrowingTaskGroup(of: Void.self) { writers in
                    for writer in 0..<2 {
                        writers.addTask {
                            for index in stride(from: writer, to: count, by: 2) {
                                try await RCUMemb.throttledRetire(Tracked(id: index, ledger: ledger))
                                let pending = RCUMemb.pendingCallbacks
                                if pending > probe.peak.load(ordering: .relaxed) { probe.peak.store(pending, ordering: .relaxed) }
                            }
                        }
                    }
                    try await writers.waitForAll()
                }
                probe.retiring.store(false, ordering: .relaxed)
                try await group.waitForAll()
            }
            try await RCUMemb.barrier()
            let after = RCUMemb.backlog
            XCTAssertLessThanOrEqual(probe.peak.load(ordering: .relaxed), policy.highWaterMark + slack, "\(throttle): bounded")
            XCTAssertEqual(ledger.freedCount, count, "\(throttle): every object reclaimed")
            XCTAssertEqual(ledger.doubleFrees, 0)
            XCTAssertGreaterThan(after.throttledRetires, before.throttledRetires, "\(throttle): tasks were throttled")
            XCTAssertGreaterThan(probe.ticks.load(ordering: .relaxed), 0)
        }
    }

    /// A cancelled task's throttled retire throws, and the object is retired all the same.
    func testCancelledThrottledRetireStillRetires() async throws {
        RCUMemb.backlogPolicy = RCUBacklogPolicy(highWaterMark: 100, lowWaterMark: 50)
        defer { RCUMemb.backlogPolicy = .standard }
        let ledger = Ledger()
        let task = Task {
            var cancelled = 0
            for index in 0..<5_000 {
                if index == 200 { withUnsafeCurrentTask { $0?.cancel() } }
                do { try await RCUMemb.throttledRetire(Tracked(id: index, ledger: ledger)) } catch { cancelled += 1 }
            }
            return cancelled
        }
        let cancelled = await task.value
        try? await Task.sleep(for: .zero)
        try await RCUMemb.barrier()
        XCTAssertEqual(ledger.freedCount, 5_000, "retired whether or not the wait was cancelled")
        XCTAssertGreaterThan(cancelled, 0)
    }

    /// The telemetry's sampled fields make sense: an old pending callback has an age, rates are positive.
    func testTelemetryAgeAndRates() {
        onThread(named: "telemetry") {
            for _ in 0..<10_000 { RCUMemb.retire(Tracked(id: 0, ledger: Ledger())) }
        }
        let telemetry = RCUMemb.backlog
        XCTAssertGreaterThan(telemetry.retiresPerSecond, 0)
        XCTAssertGreaterThanOrEqual(telemetry.retiredCallbacks, telemetry.reclaimedCallbacks)
        if telemetry.pendingCallbacks > 0 { XCTAssertGreaterThan(telemetry.oldestPendingAge, .zero) }
        RCUMemb.barrier()
        XCTAssertEqual(RCUMemb.backlog.oldestPendingAge, .zero)
        XCTAssertGreaterThan(RCUMemb.backlog.reclaimsPerSecond, 0)
    }
}

extension PerFlavor {
    @Suite(.onTestThread) struct BacklogPolicyTests {
        /// Every throttle on memb and qsbr (one case each).
        @Test(arguments: [RCUBacklogPolicy.Throttle.waitForDrain, .reclaimInline],
              [RCUMemb.self, RCUQSBR.self] as [any RCUFlavor.Type])
        func stormStaysUnderHighWaterAndReclaimsEveryObjectOnce(
            _ throttle: RCUBacklogPolicy.Throttle, _ flavor: any RCUFlavor.Type
        ) {
            checkStorm(flavor, throttle)
        }

        private func checkStorm<F: RCUFlavor>(_: F.Type, _ throttle: RCUBacklogPolicy.Throttle) {
            var policy = small
            policy.throttle = throttle
            F.backlogPolicy = policy
            defer { F.backlogPolicy = .standard }
            let before = F.backlog
            let ledger = Ledger()
            let count = 60_000
            let peak = BacklogPeak(of: F.self)
            let sampler = peak.start()
            let writers = (0..<2).map { writer in
                startThread(named: "storm-\(writer)") {
                    for index in stride(from: writer, to: count, by: 2) { F.retire(Tracked(id: index, ledger: ledger)) }
                }
            }
            writers.forEach { $0.wait() }
            peak.stop(sampler)
            F.barrier()
            let after = F.backlog
            let name = "\(F.name) \(throttle)"
            #expect(peak.value <= policy.highWaterMark + slack, "\(name): backlog bounded")
            #expect(ledger.createdCount == count)
            #expect(ledger.freedCount == count, "\(name): every object reclaimed")
            #expect(ledger.doubleFrees == 0, "\(name): none twice")
            #expect(after.throttledRetires > before.throttledRetires, "\(name): the storm was throttled")
            if throttle == .reclaimInline {
                #expect(after.inlineReclamations > before.inlineReclamations, "\(name): reclaimed inline")
            }
            #expect(after.pendingCallbacks == 0)
            #expect(!after.isThrottling, "\(name): drained below the low-water mark")
            // Objects go through call_rcu, or, when reclaimed inline, not at all.
            let queued = count - (after.inlineReclamations - before.inlineReclamations)
            #expect(after.reclaimedCallbacks - before.reclaimedCallbacks >= queued, "\(name)")
        }

        /// Inside a read section a wait for the backlog would wait for this very section: the retire
        /// queues past the mark at once, counted, and the backlog drains after the section.
        @Test(arguments: allFlavors)
        func retireInsideReadSectionDoesNotWait(_ flavor: any RCUFlavor.Type) { checkNoWaitInSection(flavor) }

        private func checkNoWaitInSection<F: RCUFlavor>(_: F.Type) {
            // Were a retire to wait here, it would wait the whole minute: the test would show it.
            F.backlogPolicy = RCUBacklogPolicy(highWaterMark: 100, lowWaterMark: 50, maximumWaitWithoutProgress: .seconds(60))
            defer { F.backlogPolicy = .standard }
            let ledger = Ledger()
            let before = F.backlog
            let start = ContinuousClock.now
            onThread(named: "section-retire-\(F.name)") {
                F.read { _ in
                    for index in 0..<1_000 { F.retire(Tracked(id: index, ledger: ledger)) }
                }
            }
            let elapsed = start.duration(to: .now)
            F.barrier()
            let after = F.backlog
            #expect(elapsed < .seconds(5), "\(F.name): no retire waited inside the section")
            #expect(after.retiresPastHighWaterWithoutWaiting > before.retiresPastHighWaterWithoutWaiting, "\(F.name)")
            #expect(after.throttledRetires == before.throttledRetires, "\(F.name): nothing throttled")
            #expect(ledger.freedCount == 1_000, "\(F.name): all reclaimed after the section")
        }
    }
}

/// What the async test's tasks share.
private final class TaskProbe: Sendable {
    let peak = Atomic<Int>(0)
    let ticks = Atomic<Int>(0)
    let retiring = Atomic<Bool>(true)
}
