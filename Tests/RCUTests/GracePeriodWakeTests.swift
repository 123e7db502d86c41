import Dispatch
import Foundation
import RCU
import Synchronization
import XCTest

/// A blocking `synchronize()` wakes the awaited waits its grace period serves without
/// taking the sequence's lock when nobody waits: the waiter count it reads first must
/// never miss a waiter that registers at the same moment.
final class GracePeriodWakeTests: XCTestCase {
    /// 3,000 rounds per flavor, each racing one awaited `synchronize(since:)` against one
    /// blocking `synchronize()` started after its cookie was taken. The flavor's call_rcu
    /// worker is held inside a callback for the whole test, so the sequence's driver
    /// callback never runs: the blocking call's own completion is the only thing that
    /// can wake the waiter, and a waiter it missed would wait forever (here: the round
    /// fails after 10 s without a grace period started).
    func testBlockingSynchronizeWakesTheWaiterItRacesWith() async throws {
        try await wakes(RCUMemb.self)
        try await wakes(RCUMemoryBarrier.self)
        try await wakes(RCUBulletproof.self)
    }

    private func wakes<F: RCUFlavor>(_: F.Type) async throws {
        let worker = WorkerHold<F>()
        var missed = 0
        var servedEarly = 0
        do {
            try await race(F.self, rounds: 3_000, missed: &missed, servedEarly: &servedEarly)
        } catch {
            await worker.release()
            throw error
        }
        await worker.release()
        XCTAssertEqual(missed, 0, "\(F.name): an awaited wait was not woken by the grace period that served it")
        XCTAssertEqual(servedEarly, 0, "\(F.name): a wait returned before its cookie's grace period ended")
    }

    private func race<F: RCUFlavor>(_: F.Type, rounds: Int, missed: inout Int, servedEarly: inout Int) async throws {
        for _ in 0..<rounds {
            let cookieTaken = DispatchSemaphore(value: 0)
            let writer = Thread {
                cookieTaken.wait()
                F.synchronize()
            }
            writer.start()
            let cookie = F.gracePeriodCookie()
            let woken = Atomic<Bool>(false)
            let waiter = Task {
                try await F.synchronize(since: cookie)
                woken.store(true, ordering: .releasing)
            }
            cookieTaken.signal()
            let deadline = ContinuousClock.now + .seconds(10)
            while !woken.load(ordering: .acquiring), ContinuousClock.now < deadline {
                try await Task.sleep(for: .microseconds(20))
            }
            if woken.load(ordering: .acquiring) {
                try await waiter.value
                if !cookie.hasElapsed { servedEarly += 1 }
            } else {
                missed += 1
                waiter.cancel()
                _ = try? await waiter.value
                return
            }
        }
    }
}

/// Holds a flavor's shared call_rcu worker inside a callback until ``release()``,
/// so no other callback of the flavor runs meanwhile.
private final class WorkerHold<F: RCUFlavor>: Sendable {
    private final class Blocker: Sendable {
        let entered: DispatchSemaphore
        let proceed: DispatchSemaphore
        init(entered: DispatchSemaphore, proceed: DispatchSemaphore) {
            self.entered = entered
            self.proceed = proceed
        }
        deinit {
            entered.signal()
            proceed.wait()
        }
    }

    private let proceed: DispatchSemaphore
    private let released = Atomic<Bool>(false)
    init() {
        let entered = DispatchSemaphore(value: 0)
        proceed = DispatchSemaphore(value: 0)
        // No reference kept here: the worker's release of the retired one runs the deinit.
        F.retire(Blocker(entered: entered, proceed: proceed))
        entered.wait()
    }

    /// Lets the worker go and waits until the callbacks queued behind it have run.
    func release() async {
        guard !released.exchange(true, ordering: .relaxed) else { return }
        proceed.signal()
        try? await F.barrier()
    }
}
