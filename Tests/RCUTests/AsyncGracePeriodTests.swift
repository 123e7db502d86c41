import Foundation
@testable import RCU
import Synchronization
import Testing
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// Grace-period waits that suspend a task, polled cookies, and readers in tasks.
final class AsyncGracePeriodTests: XCTestCase {
    // MARK: awaiting grace periods

    /// Ten thousand tasks awaiting `synchronize()` at once all finish, against a reader in
    /// back-to-back sections, and share a handful of grace periods.
    func testTenThousandWaitersShareGracePeriods() async throws {
        let stop = Atomic<Bool>(false)
        let reader = startThread(named: "busy-reader") {
            while !stop.load(ordering: .relaxed) {
                RCUMemb.read { _ in _ = usleep(1_000) }
            }
        }
        let before = RCUMemb.gracePeriodCookie()
        let tasks = 10_000
        let finished = try await withThrowingTaskGroup(of: Void.self, returning: Int.self) { group in
            for _ in 0..<tasks { group.addTask { try await RCUMemb.synchronize() } }
            var finished = 0
            for try await _ in group { finished += 1 }
            return finished
        }
        stop.store(true, ordering: .relaxed)
        reader.wait()
        let started = RCUMemb.gracePeriodCookie().ticket - before.ticket
        XCTAssertEqual(finished, tasks)
        XCTAssertGreaterThan(started, 0)
        XCTAssertLessThan(started, 200, "\(tasks) waiters started \(started) grace periods: they should share them")
    }

    /// A task cancelled before it calls `synchronize()` throws without waiting.
    func testAlreadyCancelledTaskThrowsAtOnce() async throws {
        let reader = HeldReader<RCUMemb>()
        defer { reader.release() }
        let task = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            try await RCUMemb.synchronize()
        }
        do {
            try await task.value
            XCTFail("returned normally with a reader inside")
        } catch {
            XCTAssertTrue(error is CancellationError)
        }
    }

    /// A task cancelled while a callback holds up the barrier throws before the callback ends.
    func testCancelledBarrierWaiterThrowsWhileCallbackRuns() async throws {
        let inCallback = DispatchSemaphore(value: 0)
        let finish = DispatchSemaphore(value: 0)
        RCUMemb.retire {
            inCallback.signal()
            finish.wait()
        }
        inCallback.wait()
        let task = Task { try await RCUMemb.barrier() }
        try await Task.sleep(for: .milliseconds(20))
        task.cancel()
        do {
            try await task.value
            XCTFail("returned normally while a callback was still running")
        } catch {
            XCTAssertTrue(error is CancellationError)
        }
        finish.signal()
        try await RCUMemb.barrier()
    }

    /// The async `replaceAndSynchronize` releases the old object in the task, after the
    /// reader that could hold it has left.
    func testAsyncReplaceAndSynchronizeReleasesAfterReaders() async throws {
        let ledger = Ledger()
        let shared = ReaderTally<RCUMemb>(Tracked(id: 0, ledger: ledger))
        let reader = HeldReader<RCUMemb> { section in
            _ = shared.pointer.withValue(in: section) { _ in }
        }
        let swap = Task { try await shared.pointer.replaceAndSynchronize(with: Tracked(id: 1, ledger: ledger)) }
        try await Task.sleep(for: .milliseconds(30))
        XCTAssertFalse(ledger.isFreed(0), "freed while a reader that loaded it was inside")
        reader.release()
        try await swap.value
        XCTAssertTrue(ledger.isFreed(0), "released by the time the call returned")
    }

    // MARK: polled cookies

    /// A cookie awaited from many tasks at once: all return, one grace period serves them.
    func testAwaitOneCookieFromManyTasks() async throws {
        let cookie = RCUQSBR.gracePeriodCookie()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<1_000 { group.addTask { try await RCUQSBR.synchronize(since: cookie) } }
            try await group.waitForAll()
        }
        XCTAssertTrue(cookie.hasElapsed)
        XCTAssertLessThanOrEqual(RCUQSBR.gracePeriodCookie().ticket - cookie.ticket, 2)
    }

    // MARK: fork

    /// A child of `fork()` forked while a task's wait is in flight: the child's own polled
    /// grace periods work, and the parent's task still resumes. bp, whose reader registry
    /// liburcu cleans at fork (the pool threads that queued drivers are registered readers).
    func testCookiesAcrossFork() throws {
        try XCTSkipIf(runningUnderThreadSanitizer, "ThreadSanitizer does not support threads created after fork()")
        if !IsolatedTest.isChild {
            let run = try IsolatedTest.run("RCUTests.AsyncGracePeriodTests/testCookiesAcrossFork")
            XCTAssertEqual(run.status, 0, run.output)
            XCTAssertTrue(run.output.contains("Executed 1 test, with 0 failures"), run.output)
            return
        }
        // The worker sleeps in a callback, so the waiter's driver is still queued at the fork.
        let busy = DispatchSemaphore(value: 0)
        RCUBulletproof.retire {
            busy.signal()
            usleep(200_000)
        }
        busy.wait()
        let parentWaiter = Task { try await RCUBulletproof.synchronize() }
        usleep(20_000)
        let child = fork()
        if child == 0 {
            let cookie = RCUBulletproof.startGracePeriod()
            RCUBulletproof.synchronize(since: cookie)
            _exit(cookie.hasElapsed ? 0 : 1)
        }
        var status: Int32 = 0
        waitpid(child, &status, 0)
        XCTAssertEqual(status, 0, "child exit status")
        let finished = DispatchSemaphore(value: 0)
        Task {
            _ = try? await parentWaiter.value
            finished.signal()
        }
        XCTAssertEqual(finished.wait(timeout: .now() + 10), .success, "the parent's waiter never resumed")
    }
}

extension PerFlavor {
    @Suite struct AsyncGracePeriodTests {
        // MARK: awaiting grace periods

        /// `await synchronize()` does not return while a reader that was in its section at
        /// the call is still there, and returns once it leaves.
        @Test(arguments: allFlavors)
        func awaitSynchronizeWaitsForPreexistingReader(_ flavor: any RCUFlavor.Type) async throws {
            try await checkAwaitWaitsForReader(flavor)
        }

        private func checkAwaitWaitsForReader<F: RCUFlavor>(_: F.Type) async throws {
            let reader = HeldReader<F>()
            let returned = Atomic<Bool>(false)
            let waiter = Task {
                try await F.synchronize()
                returned.store(true, ordering: .releasing)
            }
            try await Task.sleep(for: .milliseconds(50))
            let returnedEarly = returned.load(ordering: .acquiring)
            #expect(!returnedEarly, "\(F.name): returned while the reader was inside")
            reader.release()
            try await waiter.value
            let returnedAfter = returned.load(ordering: .acquiring)
            #expect(returnedAfter)
        }

        /// A cancelled waiter throws while the reader it waits for is still inside; the other
        /// waiters of the same grace period still wait for the reader.
        @Test(arguments: allFlavors)
        func cancelledWaiterThrowsPromptlyOthersKeepWaiting(_ flavor: any RCUFlavor.Type) async throws {
            try await checkCancellation(flavor)
        }

        private func checkCancellation<F: RCUFlavor>(_: F.Type) async throws {
            let reader = HeldReader<F>()
            let otherReturned = Atomic<Bool>(false)
            let cancelled = Task { try await F.synchronize() }
            let other = Task {
                try await F.synchronize()
                otherReturned.store(true, ordering: .releasing)
            }
            try await Task.sleep(for: .milliseconds(20))
            cancelled.cancel()
            do {
                try await cancelled.value
                Issue.record("\(F.name): a cancelled wait returned normally while the reader was inside")
            } catch {
                #expect(error is CancellationError, "\(F.name): \(error)")
            }
            let otherReturnedEarly = otherReturned.load(ordering: .acquiring)
            #expect(!otherReturnedEarly, "\(F.name): cancelling one waiter ended another's wait")
            reader.release()
            try await other.value
            let otherReturnedAfter = otherReturned.load(ordering: .acquiring)
            #expect(otherReturnedAfter)
        }

        /// `await barrier()` returns after every callback queued before it has run; many
        /// waiters share barriers.
        @Test(arguments: allFlavors)
        func awaitBarrierRunsEarlierCallbacks(_ flavor: any RCUFlavor.Type) async throws {
            try await checkAwaitBarrier(flavor)
        }

        private func checkAwaitBarrier<F: RCUFlavor>(_: F.Type) async throws {
            let ledger = Ledger()
            let count = 500
            for id in 0..<count { F.retire(Tracked(id: id, ledger: ledger)) }
            let runsBefore = RCUGracePeriodSequence.of(F.kind).state.withLock { $0.barriersStarted }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<100 { group.addTask { try await F.barrier() } }
                try await group.waitForAll()
            }
            #expect(ledger.freedCount == count, "\(F.name): callbacks queued before the barrier ran")
            let runs = RCUGracePeriodSequence.of(F.kind).state.withLock { $0.barriersStarted } - runsBefore
            #expect(runs > 0)
            #expect(runs < 100, "\(F.name): 100 waiters ran \(runs) barriers")
        }

        // MARK: polled cookies

        /// A cookie taken before a reader's section began, or while it is inside, is not complete
        /// while the reader is inside, even with a grace period started; it is after the reader
        /// leaves and one grace period passes.
        @Test(arguments: allFlavors)
        func polledCookiesWaitForReaders(_ flavor: any RCUFlavor.Type) async throws {
            try await checkCookies(flavor)
        }

        private func checkCookies<F: RCUFlavor>(_: F.Type) async throws {
            let before = F.gracePeriodCookie()
            let reader = HeldReader<F>()
            let during = F.startGracePeriod()
            #expect(before <= during)
            try await Task.sleep(for: .milliseconds(50))
            #expect(!before.hasElapsed, "\(F.name): cookie taken before the section complete while it runs")
            #expect(!during.hasElapsed, "\(F.name): cookie taken during the section complete while it runs")
            reader.release()
            // startGracePeriod() alone drives it: no waiter, no blocking call.
            let ended = await eventually { during.hasElapsed }
            #expect(ended, "\(F.name): started grace period never ended")
            #expect(before.hasElapsed)
        }

        /// `gracePeriodCookie()` starts nothing; a blocking `synchronize()` ends the cookies
        /// taken before it; `synchronize(since:)` does not wait for an elapsed cookie.
        @Test(.onTestThread, arguments: allFlavors)
        func cookieSemantics(_ flavor: any RCUFlavor.Type) { checkCookieSemantics(flavor) }

        private func checkCookieSemantics<F: RCUFlavor>(_: F.Type) {
            let idle = F.gracePeriodCookie()
            usleep(30_000)
            #expect(!idle.hasElapsed, "\(F.name): a cookie elapsed with no grace period started")
            F.synchronize()
            #expect(idle.hasElapsed, "\(F.name): synchronize() did not end an earlier cookie")
            let next = F.gracePeriodCookie()
            #expect(next > idle)
            #expect(!next.hasElapsed)
            let ticketsBefore = F.gracePeriodCookie()
            F.synchronize(since: idle)      // already elapsed: no new grace period
            #expect(F.gracePeriodCookie() == ticketsBefore, "\(F.name): waited for an elapsed cookie")
            F.synchronize(since: next)
            #expect(next.hasElapsed)
        }

        // MARK: readers in tasks

        /// Tasks on the cooperative pool read through the generic `read` and through reader
        /// scopes while another task replaces and awaits grace periods: no task ever sees a
        /// freed object, and no pool thread is left online (QSBR) after its scope.
        @Test(arguments: allFlavors)
        func readersInTasksNeverSeeFreedObjects(_ flavor: any RCUFlavor.Type) async throws {
            try await checkReadersInTasks(flavor)
        }

        private func checkReadersInTasks<F: RCUFlavor>(_: F.Type) async throws {
            let ledger = Ledger()
            let seen = ReaderTally<F>(Tracked(id: 0, ledger: ledger))
            try await withThrowingTaskGroup(of: Void.self) { group in
                for reader in 0..<4 {
                    group.addTask {
                        while !seen.stop.load(ordering: .relaxed) {
                            if reader % 2 == 0 {
                                F.read { section in
                                    if seen.pointer.withValue(in: section, { $0.isAlive }) == false { seen.dead.add(1, ordering: .relaxed) }
                                }
                            } else {
                                F.withReader { reader in
                                    for _ in 0..<100 {
                                        reader.read { section in
                                            if seen.pointer.withValue(in: section, { $0.isAlive }) == false {
                                                seen.dead.add(1, ordering: .relaxed)
                                            }
                                        }
                                        F.quiescentStateIfQSBR()
                                    }
                                }
                                if RCUQSBR.isOnline { seen.leftOnline.add(1, ordering: .relaxed) }
                            }
                            await Task.yield()
                        }
                    }
                }
                group.addTask {
                    for id in 1...60 {
                        if id % 2 == 0 {
                            try await seen.pointer.replaceAndSynchronize(with: Tracked(id: id, ledger: ledger))
                        } else {
                            seen.pointer.replace(with: Tracked(id: id, ledger: ledger))
                            try await F.synchronize()
                        }
                    }
                    seen.stop.store(true, ordering: .relaxed)
                }
                try await group.waitForAll()
            }
            #expect(seen.dead.load(ordering: .relaxed) == 0, "\(F.name): a task read a freed object")
            #expect(seen.leftOnline.load(ordering: .relaxed) == 0, "\(F.name): a pool thread stayed online after its scope")
            try await F.barrier()
            #expect(ledger.freedCount == 60, "\(F.name): every replaced object reclaimed")
        }

        /// Polls `condition` for up to 5 s.
        private func eventually(_ condition: () -> Bool) async -> Bool {
            for _ in 0..<500 {
                if condition() { return true }
                try? await Task.sleep(for: .milliseconds(10))
            }
            return condition()
        }
    }
}

/// What reader tasks saw, shared with the writer task.
final class ReaderTally<F: RCUFlavor>: Sendable {
    let pointer: RCUPointer<Tracked, F>
    let dead = Atomic<Int>(0)
    let leftOnline = Atomic<Int>(0)
    let stop = Atomic<Bool>(false)
    init(_ first: Tracked) { pointer = RCUPointer(first) }
}
