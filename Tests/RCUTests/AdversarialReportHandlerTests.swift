import Foundation
import RCU
import Synchronization
import XCTest

/// Hostile `RCUMisuse.reportHandler`s: a handler that commits the same misuse (it runs inside
/// the offending read section), swaps the handler, while other threads misuse concurrently.
final class AdversarialRCUReportHandlerTests: XCTestCase {
    static func handlerDepth(_ change: Int) -> Int {
        let dictionary = Thread.current.threadDictionary
        let depth = (dictionary["adv.rcu.depth"] as? Int ?? 0) + change
        dictionary["adv.rcu.depth"] = depth
        return depth
    }

    func testHandlerThatMisusesAgainIsNotCalledRecursively() {
        let previous = RCUMisuse.reportHandler
        defer { RCUMisuse.reportHandler = previous }
        let handled = Atomic<Int>(0)
        let deepest = Atomic<Int>(0)
        let handler: RCUMisuse.ReportHandler = .custom { misuse in
            let depth = Self.handlerDepth(1)
            defer { _ = Self.handlerDepth(-1) }
            _ = deepest.max(depth, ordering: .relaxed)
            guard depth == 1 else { return }   // a nested call is the break; stop here instead of overflowing the stack
            XCTAssertEqual(misuse.kind, .synchronizeInReadSection)
            _ = handled.add(1, ordering: .relaxed)
            RCUMemb.synchronize()              // the handler runs inside the reader's section: the same misuse
        }
        RCUMisuse.reportHandler = handler

        let threads = 2, misusesPerThread = 20
        let group = DispatchGroup()
        for _ in 0..<threads {
            group.enter()
            Thread {
                for _ in 0..<misusesPerThread { RCUMemb.read { _ in RCUMemb.synchronize() } }
                group.leave()
            }.start()
        }
        group.enter()
        Thread {
            for _ in 0..<500 { RCUMisuse.reportHandler = handler }
            group.leave()
        }.start()
        XCTAssertEqual(group.wait(timeout: .now() + 60), .success, "a misusing thread hung")
        XCTAssertEqual(deepest.load(ordering: .relaxed), 1,
                       "a misuse inside the report handler called the handler again (unbounded recursion)")
        XCTAssertEqual(handled.load(ordering: .relaxed), threads * misusesPerThread)
    }

    /// `fork()` while another thread switches the handler (its lock), then the child switches
    /// it too: the child must not wait for a lock held by a thread it lacks.
    func testChildSwitchesTheHandlerAfterForksDuringSwitches() throws {
        try XCTSkipIf(ProcessInfo.processInfo.environment["TSAN_OPTIONS"] != nil
                      || dlsym(dlopen(nil, RTLD_LAZY), "__tsan_init") != nil,
                      "ThreadSanitizer reports fork() in a multithreaded process")
        let previous = RCUMisuse.reportHandler
        defer { RCUMisuse.reportHandler = previous }
        let done = DispatchSemaphore(value: 0)
        final class Flag: Sendable { let stop = Atomic<Bool>(false) }
        let flag = Flag()
        Thread {
            while !flag.stop.load(ordering: .relaxed) { RCUMisuse.reportHandler = .custom { _ in } }
            done.signal()
        }.start()
        var hung = 0
        for _ in 0..<30 {
            let pid = fork()
            if pid == 0 {
                RCUMisuse.reportHandler = .custom { _ in }
                _exit(0)
            }
            var status: Int32 = 0, exited = false
            let deadline = ContinuousClock.now + .seconds(5)
            while ContinuousClock.now < deadline {
                if waitpid(pid, &status, WNOHANG) == pid { exited = true; break }
                usleep(1_000)
            }
            if !exited { kill(pid, SIGKILL); _ = waitpid(pid, &status, 0) }
            if !exited || status != 0 { hung += 1 }
        }
        flag.stop.store(true, ordering: .relaxed)
        done.wait()
        XCTAssertEqual(hung, 0, "children that hung switching the misuse handler after a fork")
    }
}
