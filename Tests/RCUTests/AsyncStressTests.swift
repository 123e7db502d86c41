import Foundation
import RCU
import Synchronization
import Testing

extension PerFlavor {
    /// The awaited waits under stress, with invariants checked on every wait (from the
    /// adversarial review of the async API).
    @Suite struct AsyncStressTests {
        /// 3,000 waiters (synchronize, synchronize(since:), barrier) against a held reader,
        /// cancelled before they run, around registration, mid-wait or not at all: none
        /// returns normally while the reader is inside, every one ends, per flavor.
        @Test(arguments: allFlavors)
        func cancellationStormNeverReturnsEarly(_ flavor: any RCUFlavor.Type) async throws {
            try await cancellationStorm(flavor)
        }

        private func cancellationStorm<F: RCUFlavor>(_: F.Type) async throws {
            let reader = HeldReader<F>()
            let tally = StormTally()
            let cookie = F.gracePeriodCookie()
            var tasks: [Task<Void, Never>] = []
            for i in 0..<3_000 {
                let task = Task {
                    do {
                        switch i % 3 {
                        case 0: try await F.synchronize()
                        case 1: try await F.synchronize(since: cookie)
                        default: try await F.barrier()
                        }
                        // A barrier need not wait for a reader; grace periods must.
                        if i % 3 != 2 && tally.readerInside.load(ordering: .acquiring) { tally.early.add(1, ordering: .relaxed) }
                        tally.finished.add(1, ordering: .relaxed)
                    } catch {
                        tally.cancelled.add(1, ordering: .relaxed)
                    }
                }
                tasks.append(task)
                switch i % 5 {
                case 0: task.cancel()
                case 1: await Task.yield(); task.cancel()
                case 2: if i % 10 == 2 { try await Task.sleep(for: .microseconds(50)) }; task.cancel()
                default: break
                }
            }
            try await Task.sleep(for: .milliseconds(100))
            tally.readerInside.store(false, ordering: .releasing)
            reader.release()
            for task in tasks { await task.value }
            #expect(tally.early.load(ordering: .relaxed) == 0, "\(F.name): waits returned while the reader was inside")
            #expect(tally.finished.load(ordering: .relaxed) + tally.cancelled.load(ordering: .relaxed) == 3_000)
            #expect(tally.finished.load(ordering: .relaxed) >= 1_200, "\(F.name): the uncancelled ones finished")
        }

        /// A read section seen open before an awaited or polled wait began has ended when the
        /// wait returns, while blocking synchronize() on two threads completes tickets out of
        /// order and sibling waiters are cancelled at random.
        @Test(arguments: allFlavors)
        func awaitedWaitOutlivesEverySectionItSawOpen(_ flavor: any RCUFlavor.Type) async throws {
            try await outlives(flavor)
        }

        private func outlives<F: RCUFlavor>(_: F.Type) async throws {
            let tally = StormTally()
            var threads = [startThread(named: "numbered-reader") {
                var number = 0
                while !tally.stop.load(ordering: .relaxed) {
                    number += 1
                    F.read { _ in
                        tally.openSection.store(number, ordering: .sequentiallyConsistent)
                        for _ in 0..<Int.random(in: 0..<20_000) { _ = tally.openSection.load(ordering: .relaxed) }
                        tally.openSection.store(0, ordering: .sequentiallyConsistent)
                    }
                }
            }]
            for churn in 0..<2 {
                threads.append(startThread(named: "churn-\(churn)") {
                    while !tally.stop.load(ordering: .relaxed) {
                        F.synchronize()
                        _ = F.startGracePeriod()
                    }
                })
            }
            let end = ContinuousClock.now + .seconds(1)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for waiter in 0..<6 {
                    group.addTask {
                        while ContinuousClock.now < end {
                            let seen = tally.openSection.load(ordering: .sequentiallyConsistent)
                            let sibling = Task { try await F.synchronize() }
                            switch waiter % 3 {
                            case 0: try await F.synchronize()
                            case 1: try await F.synchronize(since: F.gracePeriodCookie())
                            default:
                                let cookie = F.startGracePeriod()
                                while !cookie.hasElapsed { await Task.yield() }
                            }
                            if Bool.random() { sibling.cancel() }
                            tally.finished.add(1, ordering: .relaxed)
                            if seen != 0 && tally.openSection.load(ordering: .sequentiallyConsistent) == seen {
                                tally.early.add(1, ordering: .relaxed)
                            }
                            _ = try? await sibling.value
                        }
                    }
                }
                try await group.waitForAll()
            }
            tally.stop.store(true, ordering: .relaxed)
            for thread in threads { thread.wait() }
            #expect(tally.finished.load(ordering: .relaxed) > 0)
            #expect(tally.early.load(ordering: .relaxed) == 0, "\(F.name): a wait returned with a section it saw open still open")
        }
    }
}

final class StormTally: Sendable {
    let early = Atomic<Int>(0)
    let finished = Atomic<Int>(0)
    let cancelled = Atomic<Int>(0)
    let readerInside = Atomic<Bool>(true)
    let openSection = Atomic<Int>(0)
    let stop = Atomic<Bool>(false)
}
