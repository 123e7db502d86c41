import Foundation
import RCU
import Synchronization
import XCTest

/// Attacks on the flavor pass from the public API: bp readers entering the shim's reader
/// registry (threads that exit, threads created by C, many short-lived threads, stale
/// slots, fork), flavors mixed on one thread, generic code over every flavor, and the
/// inline-reclaim policy changed during a retire storm.
final class AdversarialFlavorTests: XCTestCase {
    /// The names the stall detector would give the threads now holding up a bp grace period.
    private func blockingBulletproofReaders() -> [String] {
        var names: [String] = []
        RCUBulletproof.forEachBlockingReader { _, name in names.append(name) }
        return names
    }

    /// Many short-lived threads that read bp once each: every registry entry leaves with
    /// its thread, so the registered count comes back to where it was.
    func testShortLivedBulletproofThreadsLeaveTheRegistry() {
        RCUBulletproof.read { _ in }  // this thread's own entry, before counting
        let before = RCUBulletproof.registeredThreadCount
        let threads = 2_000, concurrent = 16
        for wave in 0..<(threads / concurrent) {
            let done = (0..<concurrent).map { index in
                startThread(named: "adv-bp-\(wave)-\(index)") {
                    RCUBulletproof.read { _ in }
                    XCTAssertTrue(RCUBulletproof.isThreadRegistered)
                }
            }
            done.forEach { $0.wait() }
        }
        // Thread exit hooks run after the body signals: wait for them, not for a fixed time.
        let deadline = ContinuousClock.now + .seconds(10)
        while RCUBulletproof.registeredThreadCount > before, ContinuousClock.now < deadline { usleep(1_000) }
        XCTAssertEqual(RCUBulletproof.registeredThreadCount, before, "bp registry entries outlived their threads")
        RCUBulletproof.synchronize()
    }

    /// A bp reader on a thread made by `pthread_create` directly (no Foundation): it is
    /// counted while it lives and not after it is joined. The count is process-wide and
    /// other tests' bp threads (liburcu-cds's resize helpers among them) may still be
    /// exiting, so each attempt starts from a count that held still for 20 ms, and one
    /// attempt of ten must see exactly this thread come and go.
    func testBulletproofReaderOnPthreadCreatedThread() {
        RCUBulletproof.read { _ in }
        var attempts: [(before: Int, inside: Int, after: Int)] = []
        for _ in 0..<10 {
            var before = RCUBulletproof.registeredThreadCount
            for _ in 0..<100 {
                usleep(20_000)
                let now = RCUBulletproof.registeredThreadCount
                if now == before { break }
                before = now
            }
            var thread = pthread_t()
            let status = pthread_create(&thread, nil, { _ in
                RCUBulletproof.read { _ in }
                return UnsafeMutableRawPointer(bitPattern: RCUBulletproof.registeredThreadCount)
            }, nil)
            XCTAssertEqual(status, 0)
            var result: UnsafeMutableRawPointer?
            pthread_join(thread, &result)
            let attempt = (before: before, inside: Int(bitPattern: result), after: RCUBulletproof.registeredThreadCount)
            if attempt.inside == before + 1, attempt.after == before { return }
            attempts.append(attempt)
        }
        XCTFail("a C-created bp reader is counted while it lives, and not after it is joined: \(attempts)")
    }

    /// A bp reader exits; another thread then reads bp (liburcu may give it the freed slot)
    /// and holds its section: the stall detector names the reader that holds the grace
    /// period, never the one that exited.
    func testBlockingBulletproofReaderIsTheLiveOneNotAnExitedOne() {
        for round in 0..<20 {
            onThread(named: "adv-bp-gone-\(round)") { RCUBulletproof.read { _ in } }
            let entered = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
            let holder = startThread(named: "adv-bp-hold-\(round)") {
                RCUBulletproof.read { _ in
                    entered.signal()
                    release.wait()
                }
            }
            entered.wait()
            let names = blockingBulletproofReaders()
            release.signal()
            holder.wait()
            XCTAssertEqual(names, ["adv-bp-hold-\(round)"], "round \(round)")
        }
        XCTAssertEqual(blockingBulletproofReaders(), [])
    }

    /// A thread that reads bp again from a thread-specific destructor that runs after the
    /// shim's and liburcu's exit hooks: it registers again while exiting, and still leaves
    /// the registry, and later grace periods end.
    func testBulletproofReadFromALateThreadExitDestructor() {
        RCUBulletproof.read { _ in }  // the shim's exit key exists before the one below
        let before = RCUBulletproof.registeredThreadCount
        var key = pthread_key_t()
        XCTAssertEqual(pthread_key_create(&key, { _ in RCUBulletproof.read { _ in } }), 0)
        defer { pthread_key_delete(key) }
        let box = Int(key)
        for round in 0..<50 {
            onThread(named: "adv-bp-late-\(round)") {
                RCUBulletproof.read { _ in }
                pthread_setspecific(pthread_key_t(box), UnsafeRawPointer(bitPattern: 1))
            }
        }
        let deadline = ContinuousClock.now + .seconds(10)
        while RCUBulletproof.registeredThreadCount > before, ContinuousClock.now < deadline { usleep(1_000) }
        // At most `before`: the 50 threads left the registry (a bp thread of another test,
        // such as liburcu-cds's resize worker, may have left it meanwhile too).
        XCTAssertLessThanOrEqual(RCUBulletproof.registeredThreadCount, before)
        RCUBulletproof.synchronize()
        XCTAssertEqual(blockingBulletproofReaders(), [])
    }

    /// fork() while bp readers are registered on other (live, parked) threads: the child
    /// reads bp, waits for grace periods and a barrier, and sees only itself registered.
    func testForkWhileBulletproofReadersAreRegistered() throws {
        try XCTSkipIf(runningUnderThreadSanitizer, "ThreadSanitizer does not support fork() with threads")
        RCUBulletproof.read { _ in }
        let park = DispatchSemaphore(value: 0)
        let registered = DispatchSemaphore(value: 0)
        let parked = (0..<4).map { index in
            startThread(named: "adv-bp-parked-\(index)") {
                RCUBulletproof.read { _ in }
                registered.signal()
                park.wait()
            }
        }
        for _ in parked { registered.wait() }
        defer {
            for _ in parked { park.signal() }
            parked.forEach { $0.wait() }
        }
        RCUBulletproof.retire {}
        // From a fresh thread, whose first bp read is this package's: a thread that liburcu
        // registered itself first (a liburcu-cds call) is not in the shim's registry (see
        // the report of the adversarial flavor pass), and the count below would miss it.
        let forked = Atomic<Int32>(-1)
        onThread(named: "adv-bp-forker") {
            RCUBulletproof.read { _ in }
            forked.store(AdversarialFlavorTests.forkAndCheckBulletproofChild(), ordering: .relaxed)
        }
        XCTAssertEqual(forked.load(ordering: .relaxed), 0, "child status")
    }

    /// Forks; the child checks its bp registry and grace periods. Returns the child's status.
    private static func forkAndCheckBulletproofChild() -> Int32 {
        let pid = fork()
        if pid == 0 {
            alarm(20)
            var status: Int32 = RCUBulletproof.staleReadersAfterFork == 0 ? 0 : 1
            RCUBulletproof.read { _ in }
            RCUBulletproof.synchronize()
            RCUBulletproof.retire {}
            RCUBulletproof.barrier()
            if RCUBulletproof.registeredThreadCount != 1 { status = Int32(10 + RCUBulletproof.registeredThreadCount) }
            onThread(named: "adv-bp-child") { RCUBulletproof.read { _ in } }
            RCUBulletproof.synchronize()
            _exit(status)
        }
        XCTAssertGreaterThan(pid, 0)
        var status: Int32 = 0
        XCTAssertEqual(waitpid(pid, &status, 0), pid)
        return status
    }

    /// Sections and reader scopes of different flavors nested on one thread, in both
    /// orders: each flavor sees its own sections only, and grace periods of a flavor the
    /// thread is not reading end.
    func testFlavorsNestedOnOneThread() {
        onThread(named: "adv-mixed") {
            RCUMemb.read { _ in
                XCTAssertFalse(RCUBulletproof.isInReadSection)
                RCUBulletproof.read { _ in
                    XCTAssertTrue(RCUMemb.isInReadSection)
                    XCTAssertTrue(RCUBulletproof.isInReadSection)
                    XCTAssertFalse(RCUMemoryBarrier.isInReadSection)
                    RCUMemoryBarrier.read { _ in XCTAssertTrue(RCUMemoryBarrier.isInReadSection) }
                    XCTAssertFalse(RCUMemoryBarrier.isInReadSection)
                }
                XCTAssertFalse(RCUBulletproof.isInReadSection)
            }
            RCUQSBR.withReader { qsbr in
                RCUBulletproof.withReader { bp in
                    qsbr.read { _ in
                        bp.read { _ in
                            XCTAssertTrue(RCUQSBR.isInReadSection)
                            XCTAssertTrue(RCUBulletproof.isInReadSection)
                            XCTAssertFalse(RCUMemb.isInReadSection)
                        }
                        XCTAssertFalse(RCUBulletproof.isInReadSection)
                    }
                    RCUMemb.withReader { memb in
                        bp.read { _ in memb.read { _ in XCTAssertTrue(RCUMemb.isInReadSection) } }
                    }
                    qsbr.quiescentState()
                }
                qsbr.offline { RCUMemb.synchronize() }
            }
            XCTAssertFalse(RCUQSBR.isOnline)
            for flavor in allFlavors { XCTAssertFalse(flavor.isInReadSection, flavor.name) }
        }
    }

    /// Generic code over `some RCUFlavor` calling the public API with each flavor.
    func testGenericCodeOverEveryFlavor() {
        func exercise<F: RCUFlavor>(_ flavor: F.Type) {
            let ledger = Ledger()
            onThread(named: "adv-generic-\(flavor.name)") {
                let description = flavor.flavorDescription
                XCTAssertEqual(description.kind, flavor.kind)
                XCTAssertEqual(description.name, flavor.name)
                XCTAssertEqual(description.isQSBR, flavor.kind == .qsbr)
                flavor.registerThread()
                XCTAssertTrue(flavor.isThreadRegistered)
                XCTAssertGreaterThanOrEqual(flavor.registeredThreadCount, 1)
                let pointer = RCUPointer<Tracked, F>(Tracked(id: 0, ledger: ledger))
                flavor.withReader { reader in
                    for id in 1...100 {
                        reader.read { _ in XCTAssertTrue(flavor.isInReadSection) }
                        if let old = pointer.exchange(Tracked(id: id, ledger: ledger)) { flavor.retire(old) }
                        if flavor.kind == .qsbr { RCUQSBR.quiescentState() }
                    }
                    if flavor.kind == .qsbr {
                        RCUQSBR.offline { flavor.synchronize(); flavor.barrier() }
                    } else {
                        flavor.synchronize()
                        flavor.barrier()
                    }
                }
                _ = flavor.hasSysMembarrier
                _ = flavor.pendingCallbacks
                XCTAssertFalse(flavor.isInCallback)
                XCTAssertEqual(flavor.staleReadersAfterFork, 0)
                flavor.unregisterThread()
                if flavor.kind != .bulletproof { XCTAssertFalse(flavor.isThreadRegistered) }
            }
            XCTAssertEqual(ledger.freedCount, 100, flavor.name)
            XCTAssertEqual(ledger.doubleFrees, 0, flavor.name)
        }
        exercise(RCUMemb.self)
        exercise(RCUQSBR.self)
        exercise(RCUBulletproof.self)
        exercise(RCUMemoryBarrier.self)
    }

    /// A retire storm on several threads under `.reclaimInline` while another thread flips
    /// the policy's marks and throttle; barrier() from several threads meanwhile. Every
    /// object is freed exactly once; the backlog stays near the highest mark set.
    func testInlineReclaimPolicyChangedDuringAStormPerFlavor() {
        for flavor in [RCUMemb.self, RCUBulletproof.self, RCUMemoryBarrier.self] as [any RCUFlavor.Type] {
            storm(flavor)
        }
    }

    private func storm<F: RCUFlavor>(_: F.Type) {
        let previous = F.backlogPolicy
        defer { F.backlogPolicy = previous }
        let policies = [
            RCUBacklogPolicy(highWaterMark: 200, lowWaterMark: 100, throttle: .reclaimInline),
            RCUBacklogPolicy(highWaterMark: 1_000, lowWaterMark: 10, throttle: .reclaimInline),
            RCUBacklogPolicy(highWaterMark: 300, lowWaterMark: 200, throttle: .waitForDrain),
            RCUBacklogPolicy(highWaterMark: 50, lowWaterMark: 0, throttle: .reclaimInline),
        ]
        let highest = policies.map(\.highWaterMark).max()!
        F.backlogPolicy = policies[0]
        let ledger = Ledger()
        let writers = 4, perWriter = 5_000
        let running = Atomic<Bool>(true)
        let peak = Atomic<Int>(0)
        let flipper = startThread(named: "adv-flip-\(F.name)") {
            var index = 0
            while running.load(ordering: .relaxed) {
                index += 1
                F.backlogPolicy = policies[index % policies.count]
                let pending = F.pendingCallbacks
                if pending > peak.load(ordering: .relaxed) { peak.store(pending, ordering: .relaxed) }
                usleep(200)
            }
        }
        let barriers = (0..<2).map { index in
            startThread(named: "adv-barrier-\(F.name)-\(index)") {
                while running.load(ordering: .relaxed) { F.barrier() }
            }
        }
        let done = (0..<writers).map { writer in
            startThread(named: "adv-storm-\(F.name)-\(writer)") {
                for index in 0..<perWriter {
                    F.retire(Tracked(id: writer * perWriter + index, ledger: ledger))
                    if index % 64 == 0 { F.read { _ in } }
                }
            }
        }
        done.forEach { $0.wait() }
        running.store(false, ordering: .relaxed)
        flipper.wait()
        barriers.forEach { $0.wait() }
        F.backlogPolicy = previous
        F.barrier()
        XCTAssertEqual(ledger.freedCount, writers * perWriter, F.name)
        XCTAssertEqual(ledger.doubleFrees, 0, F.name)
        // Writers past the mark hand over at most a batch each before they throttle.
        XCTAssertLessThanOrEqual(peak.load(ordering: .relaxed), highest + writers * 2 * 512, "\(F.name): backlog peak")
        print("\(F.name): backlog peak \(peak.load(ordering: .relaxed)) (highest mark \(highest))")
    }
}

/// barrier() while a throttled retire reclaims a full inline batch on another thread.
final class AdversarialInlineBarrierTests: XCTestCase {
    /// Under `.reclaimInline` a retire returns once its object is in the batch, as a
    /// call_rcu retire returns once queued; the retire that fills the batch reclaims it on
    /// its own thread. A barrier that starts while it does must still wait for every object
    /// whose retire returned before the barrier, as liburcu's barrier waits for a callback
    /// that a worker is running.
    func testBarrierWaitsForABatchBeingReclaimedInline() {
        let previous = RCUMemoryBarrier.backlogPolicy
        defer { RCUMemoryBarrier.backlogPolicy = previous }
        RCUMemoryBarrier.barrier()
        RCUMemoryBarrier.backlogPolicy = RCUBacklogPolicy(
            highWaterMark: 16, lowWaterMark: 8, throttle: .reclaimInline, maximumWaitWithoutProgress: .seconds(60))
        let returned = Atomic<Int>(0), freed = Atomic<Int>(0)
        let retirerThread = Atomic<UInt>(0), reclaimedInline = Atomic<Bool>(false)
        let retirer = startThread(named: "adv-inline-retirer") {
            retirerThread.store(UInt(bitPattern: Int(bitPattern: pthread_self())), ordering: .relaxed)
            // Slow callbacks keep the backlog over the mark, so later retires gather in the
            // batch until one fills it and reclaims it here, a callback at a time.
            for _ in 0..<(4 * 512) {
                RCUMemoryBarrier.retire {
                    if UInt(bitPattern: Int(bitPattern: pthread_self())) == retirerThread.load(ordering: .relaxed) {
                        reclaimedInline.store(true, ordering: .relaxed)
                    }
                    usleep(1_000)
                    freed.add(1, ordering: .relaxed)
                }
                returned.add(1, ordering: .relaxed)
                if reclaimedInline.load(ordering: .relaxed) { break }
            }
        }
        let deadline = ContinuousClock.now + .seconds(30)
        while !reclaimedInline.load(ordering: .relaxed), ContinuousClock.now < deadline { usleep(100) }
        XCTAssertTrue(reclaimedInline.load(ordering: .relaxed), "no batch was reclaimed inline: the probe did not probe")
        let returnedBeforeBarrier = returned.load(ordering: .relaxed)
        RCUMemoryBarrier.barrier()
        let freedAfterBarrier = freed.load(ordering: .relaxed)
        retirer.wait()
        RCUMemoryBarrier.barrier()
        XCTAssertGreaterThanOrEqual(freedAfterBarrier, returnedBeforeBarrier,
                                    "barrier() returned before objects retired earlier were reclaimed")
        XCTAssertEqual(freed.load(ordering: .relaxed), returned.load(ordering: .relaxed))
    }
}
