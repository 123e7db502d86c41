import Foundation
import RCU
import RCUTestSupport
import Synchronization
import Testing
import XCTest

/// A low mark, so a two-writer storm is throttled.
private let small = RCUBacklogPolicy(highWaterMark: 2_000, lowWaterMark: 1_000)

/// The backlog policy on every path that retires (``RCUPointer`` writes), the expedited
/// policy's batches, and barriers over chains of callbacks.
final class ReclamationPressureTests: XCTestCase {
    /// Two writers may each queue up to 64 callbacks between the shim's checks, plus one each
    /// in flight, plus a sampling step.
    private let slack = 2 * 64 + 2 + 64

    final class Node: Sendable {
        let tracked: Tracked
        init(_ tracked: Tracked) { self.tracked = tracked }
    }

    final class Shared: Sendable {
        let pointer = RCUPointer<Node, RCUMemb>()
    }

    /// Two threads replacing one pointer as fast as they can are throttled like retires: the
    /// backlog stays under the mark and every replaced object is released exactly once.
    func testPointerReplaceStormIsThrottledAndBounded() {
        for throttle in [RCUBacklogPolicy.Throttle.waitForDrain, .reclaimInline] {
            var policy = small
            policy.throttle = throttle
            RCUMemb.backlogPolicy = policy
            defer { RCUMemb.backlogPolicy = .standard }
            let shared = Shared()
            let ledger = Ledger()
            let before = RCUMemb.backlog
            let count = 60_000
            let peak = BacklogPeak()
            let sampler = peak.start()
            let hold = GracePeriodHold()
            let writers = (0..<2).map { writer in
                startThread(named: "replace-\(writer)") {
                    for index in stride(from: writer, to: count, by: 2) {
                        switch index % 3 {
                        case 0: shared.pointer.replace(with: Node(Tracked(id: index, ledger: ledger)))
                        case 1: _ = shared.pointer.exchange(Node(Tracked(id: index, ledger: ledger)))
                        default:
                            let current = shared.pointer.protectedValue
                            let node = Node(Tracked(id: index, ledger: ledger))
                            if !shared.pointer.compareExchange(expected: current, desired: node).exchanged {
                                shared.pointer.replace(with: node)
                            }
                        }
                    }
                }
            }
            hold.end(whenBacklogReaches: policy.highWaterMark)
            writers.forEach { $0.wait() }
            peak.stop(sampler)
            shared.pointer.replace(with: nil)
            RCUMemb.barrier()
            let after = RCUMemb.backlog
            XCTAssertLessThanOrEqual(peak.value, policy.highWaterMark + slack, "\(throttle): backlog bounded")
            XCTAssertGreaterThan(after.throttledRetires, before.throttledRetires, "\(throttle): replacements throttled")
            XCTAssertEqual(ledger.freedCount, count, "\(throttle): every replaced object released")
            XCTAssertEqual(ledger.doubleFrees, 0)
            XCTAssertEqual(after.pendingCallbacks, 0)
        }
    }

    /// A replacement inside a read section never waits (the wait would be for this very
    /// section): it is queued past the mark and counted.
    func testReplaceInsideReadSectionDoesNotWait() {
        RCUMemb.backlogPolicy = RCUBacklogPolicy(highWaterMark: 100, lowWaterMark: 50, maximumWaitWithoutProgress: .seconds(60))
        defer { RCUMemb.backlogPolicy = .standard }
        let shared = Shared()
        let ledger = Ledger()
        let before = RCUMemb.backlog
        let start = ContinuousClock.now
        onThread(named: "section-replace") {
            RCUMemb.read { _ in
                for index in 0..<1_000 { shared.pointer.replace(with: Node(Tracked(id: index, ledger: ledger))) }
            }
        }
        XCTAssertLessThan(start.duration(to: .now), .seconds(5), "no replacement waited inside the section")
        let after = RCUMemb.backlog
        shared.pointer.replace(with: nil)       // outside any section: may be throttled
        RCUMemb.barrier()
        XCTAssertGreaterThan(after.retiresPastHighWaterWithoutWaiting, before.retiresPastHighWaterWithoutWaiting)
        XCTAssertEqual(after.throttledRetires, before.throttledRetires)
        XCTAssertEqual(ledger.freedCount, 1_000)
    }

    /// A partial expedite batch left when the retires stop is reclaimed without a barrier:
    /// its sweeper hands it to call_rcu.
    func testPartialExpediteBatchIsSweptWithoutABarrier() {
        RCUMemb.backlogPolicy = RCUBacklogPolicy(highWaterMark: 100, lowWaterMark: 50, throttle: .reclaimInline)
        defer { RCUMemb.backlogPolicy = .standard }
        let ledger = Ledger()
        let blocker = Ledger()
        // A reader holds up the worker's grace period, so the backlog stays over the mark
        // while this thread's 300 retires are throttled into the batch (fewer than 512).
        let reader = HeldReader<RCUMemb>(named: "sweep-reader")
        for index in 0..<200 { RCUMemb.retire(Tracked(id: index, ledger: blocker)) }
        onThread(named: "sweep-writer") {
            for index in 0..<300 { RCUMemb.retire(Tracked(id: index, ledger: ledger)) }
        }
        XCTAssertTrue(RCUMemb.backlog.isThrottling)
        reader.release()
        XCTAssertTrue(ledger.waitForFreed(300, timeout: 20), "gathered objects reclaimed: \(ledger.freedCount) of 300")
        XCTAssertTrue(blocker.waitForFreed(200, timeout: 20))
        XCTAssertEqual(ledger.doubleFrees, 0)
        RCUMemb.barrier()
    }

    /// An endless chain: the quiet barrier gives up after its limit and says so.
    func testQuietBarrierReportsAnEndlessChain() {
        let running = Count(1)
        let links = Count()
        @Sendable func link() {
            links.add(1)
            if running.load() == 1 { RCUMemb.retire { link() } }
        }
        RCUMemb.retire { link() }
        let start = ContinuousClock.now
        let result = RCUMemb.barrier(untilQuiet: 5)
        XCTAssertLessThan(start.duration(to: .now), .seconds(30), "bounded")
        XCTAssertFalse(result.isQuiet)
        XCTAssertEqual(result.rounds, 5)
        XCTAssertGreaterThan(result.pendingCallbacks, 0)
        XCTAssertGreaterThanOrEqual(links.load(), 5, "the chain went on meanwhile")
        running.store(0)
        XCTAssertTrue(RCUMemb.barrier(untilQuiet: 64).isQuiet, "quiet once the chain stops")
    }

    /// The async form drains the same chain.
    func testAsyncQuietBarrierDrainsChains() async throws {
        let links = Count()
        @Sendable func link(_ remaining: Int) {
            links.add(1)
            if remaining > 1 { RCUQSBR.retire { link(remaining - 1) } }
        }
        RCUQSBR.retire { link(5) }
        let result = try await RCUQSBR.barrier(untilQuiet: 64)
        XCTAssertTrue(result.isQuiet, "\(result)")
        XCTAssertEqual(links.load(), 5)
    }

    /// Refused in a read section, like `barrier()`: reported, no wait, zero rounds.
    func testQuietBarrierInReadSectionIsRefused() {
        let recorder = MisuseRecorder()
        defer { recorder.stop() }
        let result = RCUMemb.read { _ in RCUMemb.barrier(untilQuiet: 3) }
        XCTAssertEqual(result.rounds, 0)
        XCTAssertFalse(result.isQuiet)
        XCTAssertEqual(recorder.kinds, [.barrierInReadSection])
    }
}

extension PerFlavor {
    @Suite(.onTestThread) struct ReclamationPressureTests {
        /// The expedited policy reclaims whole batches after one grace period each: every inline
        /// reclamation is part of a full batch, so their count is a multiple of the batch size,
        /// and a storm of 60,000 retires needs far fewer grace periods than objects.
        @Test(arguments: [RCUMemb.self, RCUQSBR.self, RCUBulletproof.self] as [any RCUFlavor.Type])
        func expeditedPolicyReclaimsInBatches(_ flavor: any RCUFlavor.Type) { checkBatches(flavor) }

        private func checkBatches<F: RCUFlavor>(_: F.Type) {
            var policy = small
            policy.throttle = .reclaimInline
            F.backlogPolicy = policy
            defer { F.backlogPolicy = .standard }
            let ledger = Ledger()
            let before = F.backlog
            let count = 60_000
            let writers = (0..<2).map { writer in
                startThread(named: "expedite-\(writer)") {
                    for index in stride(from: writer, to: count, by: 2) { F.retire(Tracked(id: index, ledger: ledger)) }
                }
            }
            writers.forEach { $0.wait() }
            F.barrier()
            let after = F.backlog
            let inline = after.inlineReclamations - before.inlineReclamations
            let throttled = after.throttledRetires - before.throttledRetires
            #expect(inline > 0, "\(F.name): reclaimed inline")
            #expect(inline % 512 == 0, "\(F.name): inline reclamations come in full batches of 512, not \(inline)")
            #expect(inline <= throttled, "\(F.name): only throttled retires are reclaimed inline")
            #expect(ledger.freedCount == count, "\(F.name): every object reclaimed (the last partial batch too)")
            #expect(ledger.doubleFrees == 0, "\(F.name)")
            #expect(after.pendingCallbacks == 0, "\(F.name)")
        }

        /// `barrier()` waits for the callbacks queued before it, not necessarily for the ones those
        /// queue; `barrier(untilQuiet:)` waits for the whole chain, in a few rounds.
        @Test(arguments: allFlavors)
        func quietBarrierDrainsChains(_ flavor: any RCUFlavor.Type) { checkChain(flavor) }

        private func checkChain<F: RCUFlavor>(_: F.Type) {
            let links = Count()
            let length = 6
            @Sendable func link(_ remaining: Int) {
                links.add(1)
                if remaining > 1 { F.retire { link(remaining - 1) } }
            }
            F.barrier()
            F.retire { link(length) }
            F.barrier()
            let afterOne = links.load()
            #expect(afterOne >= 1, "\(F.name): barrier() waited for the callback queued before it")
            let result = F.barrier(untilQuiet: 64)
            #expect(result.isQuiet, "\(F.name): \(result)")
            #expect(result.pendingCallbacks == 0)
            #expect(links.load() == length, "\(F.name): every link ran")
            #expect(result.rounds >= 1)
            #expect(result.rounds <= length, "\(F.name): a round per remaining link at most")
        }
    }
}

/// An atomic count a callback chain can capture.
final class Count: Sendable {
    private let value: Atomic<Int>
    init(_ initial: Int = 0) { value = Atomic(initial) }
    func add(_ delta: Int) { value.add(delta, ordering: .relaxed) }
    func load() -> Int { value.load(ordering: .relaxed) }
    func store(_ new: Int) { value.store(new, ordering: .relaxed) }
}
