import Foundation
import RCU
import Synchronization
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// liburcu's fork regression (tests/regression/test_urcu_fork.c) on the Swift API,
/// per flavor: every process of a tree 3 generations deep, 10 children each
/// (1110 forks), registers, waits for grace periods, reads, queues a callback
/// and forks with callbacks pending; each parent checks its child's exit status.
///
/// Beyond liburcu's exit statuses: each process, before it exits, waits for its
/// callbacks (`barrier()`) and checks that every callback in its copy of the
/// queue ran exactly once, in the process that queued it or, pending at the fork,
/// in this one; the tree as a whole must have run some callbacks in a child that
/// its parent queued (the first generation's forks hold the call_rcu worker in a
/// slow callback so that theirs are pending). Counts cross processes through a
/// shared anonymous mapping.
///
/// Each flavor runs in a fresh test process (no other registered thread at the
/// forks). The children run only the RCU calls under test, then `_exit`. Short by
/// default (5 children, 2 generations: 30 forks); `SWIFT_RCU_REGTEST=full` runs
/// liburcu's 10 children and 3 generations.
final class ForkRegressionTests: XCTestCase {
    func testForkTreeMemb() throws { try forkTree(RCUMemb.self, test: "testForkTreeMemb") }
    func testForkTreeQSBR() throws { try forkTree(RCUQSBR.self, test: "testForkTreeQSBR") }
    func testForkTreeBulletproof() throws { try forkTree(RCUBulletproof.self, test: "testForkTreeBulletproof") }
    func testForkTreeMemoryBarrier() throws { try forkTree(RCUMemoryBarrier.self, test: "testForkTreeMemoryBarrier") }

    private func forkTree<F: RCUFlavor>(_: F.Type, test: String) throws {
        try XCTSkipIf(runningUnderThreadSanitizer, "ThreadSanitizer does not support threads created after fork()")
        if !IsolatedTest.isChild {
            let run = try IsolatedTest.run("RCUTests.ForkRegressionTests/\(test)")
            XCTAssertEqual(run.status, 0, "isolated \(test) failed:\n\(run.output)")
            XCTAssertTrue(run.output.contains("Executed 1 test, with 0 failures"), run.output)
            return
        }
        let full = ProcessInfo.processInfo.environment["SWIFT_RCU_REGTEST"] == "full"
        let tree = ForkTree<F>(children: full ? 10 : 5, depth: full ? 3 : 2)
        let succeeded = tree.generation(0)
        print("fork tree \(F.name): \(tree.children) children x \(tree.depth) generations: "
              + "\(tree.shared.finishedChildren) children checked their callbacks, \(tree.shared.failedChildren) failed, "
              + "\(tree.shared.inheritedCallbacks) callbacks pending at a fork ran in the child")
        let expected = (1...tree.depth).reduce(0) { total, level in total + Int(pow(Double(tree.children), Double(level))) }
        XCTAssertTrue(succeeded, "\(F.name): every child exited with status 0")
        XCTAssertEqual(tree.shared.failedChildren, 0, "\(F.name): children that failed or were killed")
        XCTAssertEqual(tree.shared.finishedChildren, expected, "\(F.name): children that checked their callbacks")
        XCTAssertGreaterThan(tree.shared.inheritedCallbacks, 0, "\(F.name): callbacks pending at a fork ran in the child")
        XCTAssertTrue(tree.finish(), "\(F.name): the top process ran each of its callbacks once")
    }
}

/// Counters in memory shared by every process of the tree (`MAP_SHARED | MAP_ANONYMOUS`).
struct ForkSharedCounters: @unchecked Sendable {
    private let slots: UnsafeMutablePointer<Atomic<Int>>
    private static let count = 3

    init() {
        let page = mmap(nil, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0)
        precondition(page != MAP_FAILED, "mmap failed: \(errno)")
        slots = page!.bindMemory(to: Atomic<Int>.self, capacity: Self.count)
        for index in 0..<Self.count { (slots + index).initialize(to: Atomic(0)) }
    }

    private func bump(_ index: Int) { slots[index].add(1, ordering: .relaxed) }
    private func read(_ index: Int) -> Int { slots[index].load(ordering: .acquiring) }

    func childFinished() { bump(0) }
    func childFailed() { bump(1) }
    func inheritedCallbackRan() { bump(2) }
    var finishedChildren: Int { read(0) }
    var failedChildren: Int { read(1) }
    var inheritedCallbacks: Int { read(2) }
}

/// This process's view of its callbacks; a child inherits a copy with the queue.
final class ForkCallbackCounts: Sendable {
    let queued = Atomic<Int>(0)
    let ranWhereQueued = Atomic<Int>(0)
    let ranInChild = Atomic<Int>(0)
}

/// test_urcu_fork.c's loop: `test_rcu()`, `synchronize_rcu()`, fork; the child does
/// `test_rcu()` and, above the last generation, the same loop; the parent does
/// `test_rcu()` and waits for the child.
struct ForkTree<F: RCUFlavor> {
    let children: Int
    let depth: Int
    let shared = ForkSharedCounters()
    let counts = ForkCallbackCounts()

    /// liburcu's `test_rcu()`: register, grace period, read section, call_rcu, grace period, unregister.
    func testRCU() {
        F.withReader { reader in reader.read { _ in } }
        F.synchronize()
        F.read { _ in }
        let counts = counts
        let shared = shared
        let queuer = getpid()
        counts.queued.add(1, ordering: .relaxed)
        F.retire {
            if getpid() == queuer {
                counts.ranWhereQueued.add(1, ordering: .relaxed)
            } else {
                counts.ranInChild.add(1, ordering: .relaxed)
                shared.inheritedCallbackRan()
            }
        }
        F.synchronize()
        F.unregisterThread()
    }

    /// Holds the call_rcu worker in a slow callback, so what is queued next is still
    /// pending when fork()'s prepare hook pauses the worker.
    func occupyWorker() {
        let signal = ForkStartSignal()
        F.retire {
            signal.set()
            usleep(50_000)
        }
        signal.wait()
    }

    /// Every callback in this process's copy of the queue ran exactly once.
    func finish() -> Bool {
        F.barrier()
        let queued = counts.queued.load(ordering: .acquiring)
        let ran = counts.ranWhereQueued.load(ordering: .acquiring) + counts.ranInChild.load(ordering: .acquiring)
        return queued == ran
    }

    /// One generation's loop of forks; returns whether every child exited with status 0.
    func generation(_ level: Int) -> Bool {
        for _ in 0..<children {
            if level == 0 { occupyWorker() }
            testRCU()
            F.synchronize()
            let child = fork()
            if child == 0 {
                testRCU()
                let succeeded = (level + 1 >= depth || generation(level + 1)) && finish()
                if succeeded { shared.childFinished() }
                _exit(succeeded ? 0 : 1)
            }
            guard child > 0 else { return false }
            testRCU()
            var status: Int32 = 0
            while waitpid(child, &status, 0) < 0 && errno == EINTR {}
            let exitedCleanly = status & 0x7f == 0 && (status >> 8) & 0xff == 0
            if !exitedCleanly {
                shared.childFailed()
                return false
            }
        }
        return true
    }
}

/// A flag the worker's slow callback sets once it has started.
final class ForkStartSignal: Sendable {
    private let started = Atomic<Bool>(false)
    func set() { started.store(true, ordering: .releasing) }
    func wait() { while !started.load(ordering: .acquiring) { usleep(100) } }
}
