import Foundation
import XCTest
import Lockdep

/// The package's one internal lock (`InternalLock`, `InternalCondition`, `InternalLockedValue`):
/// mutual exclusion, condition waits with deadlines, the fork-child reset, and the checks that
/// turn a failing pthread call into a stop naming the call.
final class InternalLockTests: XCTestCase {
    func testLockedValueExcludesConcurrentWriters() {
        let total = InternalLockedValue((sum: 0, inside: 0, overlaps: 0))
        let threads = 4, rounds = 20_000
        DispatchQueue.concurrentPerform(iterations: threads) { _ in
            for _ in 0..<rounds {
                total.withLock { state in
                    state.inside += 1
                    if state.inside != 1 { state.overlaps += 1 }
                    state.sum += 1
                    state.inside -= 1
                }
            }
        }
        let final = total.withLock { $0 }
        XCTAssertEqual(final.sum, threads * rounds, "every increment was kept")
        XCTAssertEqual(final.overlaps, 0, "no two threads were inside at once")
    }

    func testConditionWaitTimesOutAtItsDeadline() {
        let lock = InternalLock()
        let condition = InternalCondition()
        let start = ContinuousClock.now
        let woken = lock.withLock { lock.wait(for: condition, until: .after(.milliseconds(20))) }
        XCTAssertFalse(woken, "nobody signalled: the wait timed out")
        XCTAssertGreaterThanOrEqual(ContinuousClock.now - start, .milliseconds(20))
        XCTAssertFalse(lock.withLock { lock.wait(for: condition, until: .after(.seconds(-1))) },
                       "a deadline in the past times out at once")
    }

    func testSignalWakesAWaiterWithAnUnboundedDeadline() {
        // The flag is a class's property, read afresh after each wait. (Read through
        // `InternalLockedValue.withLock`'s `inout` argument, which the wait does not take, the
        // optimizer may load it once before the loop: a release build then waited for ever.)
        final class Flag: @unchecked Sendable { var ready = false }
        let lock = InternalLock()
        let flag = Flag()
        let condition = InternalCondition()
        let done = DispatchSemaphore(value: 0)
        let result = InternalLockedValue<Bool?>(nil)
        Thread {
            // The largest deadline saturates instead of overflowing the timespec.
            let deadline = InternalCondition.Deadline.after(.seconds(Int64.max))
            let woken = lock.withLock {
                var woken = true
                while !flag.ready && woken { woken = lock.wait(for: condition, until: deadline) }
                return woken
            }
            result.withLock { $0 = woken }
            done.signal()
        }.start()
        usleep(20_000)
        lock.withLock {
            flag.ready = true
            condition.signal()
        }
        XCTAssertEqual(done.wait(timeout: .now() + 10), .success, "the waiter returned")
        XCTAssertEqual(result.withLock { $0 }, true, "woken by the signal, not timed out")
    }

    func testReinitializedLockIsUsableAgain() {
        let value = InternalLockedValue(1)
        value.lock.reinitializeInForkedChild()
        XCTAssertEqual(value.withLock { $0 += 1; return $0 }, 2)
    }

    /// In a child of `fork()` a lock held by a thread of the parent (which the child lacks)
    /// would block forever; the child handler's reset makes it usable.
    func testForkedChildResetsALockHeldByAParentThread() throws {
        try XCTSkipIf(runningUnderThreadSanitizer, "ThreadSanitizer reports fork() in a multithreaded process")
        let value = InternalLockedValue(0)
        let holding = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        Thread {
            value.withLock { _ in
                holding.signal()
                release.wait()
            }
        }.start()
        holding.wait()
        let child = fork()
        if child == 0 {
            value.lock.reinitializeInForkedChild()
            _exit(value.withLock { $0 += 1; return $0 } == 1 ? 0 : 1)
        }
        release.signal()
        XCTAssertGreaterThan(child, 0, "fork failed")
        var status: Int32 = 0
        XCTAssertEqual(waitpid(child, &status, 0), child)
        XCTAssertEqual(status, 0, "the child took the reset lock and exited cleanly")
    }

    /// Debug builds use an error-checking mutex: locking it twice on one thread stops with
    /// the call and `EDEADLK` named instead of hanging.
    func testRelockingOnTheSameThreadStopsNamingTheCall() throws {
        #if DEBUG
        if Self.isCrashChild {
            let lock = InternalLock()
            lock.lock()
            lock.lock()
            return
        }
        let output = try runCrashingTest("testRelockingOnTheSameThreadStopsNamingTheCall")
        XCTAssertTrue(output.contains("pthread_mutex_lock failed: EDEADLK"), output)
        #else
        throw XCTSkip("release builds use a default mutex, which does not check the owner")
        #endif
    }

    /// Unlocking a mutex the thread does not hold stops with `EPERM` named.
    func testUnlockingWithoutHoldingStopsNamingTheCall() throws {
        #if DEBUG
        if Self.isCrashChild {
            InternalLock().unlock()
            return
        }
        let output = try runCrashingTest("testUnlockingWithoutHoldingStopsNamingTheCall")
        XCTAssertTrue(output.contains("pthread_mutex_unlock failed: EPERM"), output)
        #else
        throw XCTSkip("release builds use a default mutex, which does not check the owner")
        #endif
    }

    func testErrorsAreNamedSymbolically() {
        XCTAssertEqual(errnoName(EDEADLK), "EDEADLK")
        XCTAssertEqual(errnoName(EBUSY), "EBUSY")
        XCTAssertEqual(errnoName(EPERM), "EPERM")
        XCTAssertEqual(errnoName(12345), "errno 12345")
    }

    private static let crashMarker = "LOCKDEP_INTERNAL_LOCK_CRASH"
    private static var isCrashChild: Bool { ProcessInfo.processInfo.environment[crashMarker] != nil }

    /// Runs the test `name` again in a fresh test process (not a fork: a crash there runs the
    /// backtracer, which would keep a forked child's pipe open), where it makes the failing
    /// call; the process must be stopped by the trap. Returns what it printed.
    private func runCrashingTest(_ name: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
        process.arguments = ["LockdepTests.InternalLockTests/\(name)"]
        process.environment = ProcessInfo.processInfo.environment
            .merging([Self.crashMarker: "1", "SWIFT_BACKTRACE": "enable=no"]) { $1 }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationReason, .uncaughtSignal, "the failing call stopped the process:\n\(text)")
        return text
    }
}

private let runningUnderThreadSanitizer: Bool = dlsym(dlopen(nil, RTLD_LAZY), "__tsan_init") != nil
