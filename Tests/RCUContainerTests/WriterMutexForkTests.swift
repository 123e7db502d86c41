#if canImport(Glibc)
import Glibc
#endif
import Foundation
import RCU
import RCUTestSupport
import XCTest

/// A container's writer lock in a `fork()` child: held by a parent thread at the fork, it has
/// no holder left in the child, so a child's lock stops the process with a message instead of
/// waiting for ever; free at the fork, it works in the child.
final class WriterMutexForkTests: XCTestCase {
    func testLockHeldByAParentThreadAtTheForkStopsTheChildWithTheReason() throws {
        try XCTSkipIf(runningUnderThreadSanitizer, "ThreadSanitizer does not support fork() with threads")
        // Under AddressSanitizer the child's trap becomes ASan's report, whose symbolizer (a
        // process of its own, holding the captured stderr) outlives the child.
        try XCTSkipIf(runningUnderAddressSanitizer, "the child's trap is ASan's to report")
        let mutex = RCUWriterMutex()
        let held = DispatchSemaphore(value: 0), forked = DispatchSemaphore(value: 0)
        let holder = Thread {
            mutex.withLock {
                held.signal()
                forked.wait()
            }
        }
        holder.start()
        held.wait()
        let child = Self.runInChild {
            mutex.lock()
            return 0
        }
        forked.signal()
        XCTAssertFalse(child.hung, "the child waited for a holder that does not exist in it")
        XCTAssertNotEqual(child.exitStatus, 0, "the child took a lock a parent thread held")
        XCTAssertTrue(child.stderr.contains("in a fork() child: a thread of the parent process held this writer lock"),
                      child.stderr)
        XCTAssertTrue(child.stderr.contains("WriterMutexForkTests.swift"), child.stderr)
        mutex.withLock {}   // the parent's lock is unaffected
    }

    func testLockFreeAtTheForkWorksInTheChildAsDoNewContainers() throws {
        try XCTSkipIf(runningUnderThreadSanitizer, "ThreadSanitizer does not support fork() with threads")
        let mutex = RCUWriterMutex()
        mutex.withLock {}
        let map = RCUDictionary<Int, Int, RCUMemb>()
        map.updateValue(1, forKey: 1)
        let child = Self.runInChild {
            mutex.withLock {}
            map.updateValue(2, forKey: 2)
            let fresh = RCUDictionary<Int, Int, RCUMemb>()
            fresh.updateValue(3, forKey: 3)
            return map.count == 2 && fresh.count == 1 ? 0 : 3
        }
        XCTAssertFalse(child.hung)
        XCTAssertEqual(child.exitStatus, 0, child.stderr)
    }

    /// Runs `body` in a forked child with its stderr captured: its exit status (nil when a
    /// signal ended it), whether it hung (killed after 20 s), and what it wrote to stderr.
    static func runInChild(_ body: () -> Int32) -> (exitStatus: Int32?, hung: Bool, stderr: String) {
        var pipeEnds: [Int32] = [0, 0]
        precondition(pipe(&pipeEnds) == 0)
        let pid = fork()
        if pid == 0 {
            dup2(pipeEnds[1], 2)
            close(pipeEnds[0])
            alarm(20)
            _exit(body())
        }
        precondition(pid > 0, "fork failed")
        close(pipeEnds[1])
        let (status, ended) = waitForChild(pid, timeout: .seconds(25))
        var hung = !ended
        // SIGALRM (the child's own 20 s alarm) is a hang too.
        if status & 0x7f == SIGALRM { hung = true }
        // Non-blocking: a process the child started (a sanitizer's symbolizer) may still hold
        // the pipe's write end; what the child wrote is in the pipe already.
        _ = fcntl(pipeEnds[0], F_SETFL, O_NONBLOCK)
        var output = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = read(pipeEnds[0], &buffer, buffer.count)
            if n <= 0 { break }
            output += buffer[0..<n]
        }
        close(pipeEnds[0])
        let exitStatus: Int32? = status & 0x7f == 0 ? (status >> 8) & 0xff : nil
        return (exitStatus, hung, String(decoding: output, as: UTF8.self))
    }
}
