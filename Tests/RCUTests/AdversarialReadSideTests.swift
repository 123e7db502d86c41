import Foundation
import RCU
import Synchronization
import XCTest

/// Checks, from inside a read section, that a grace period started by another thread does not
/// end before the section does: a writer publishes a new object and waits for a grace period
/// (`replaceAndSynchronize`), after which it releases the object this section is looking at.
final class GracePeriodOracle<Flavor: RCUFlavor>: Sendable {
    let ledger = Ledger()
    let pointer: RCUPointer<Tracked, Flavor>
    private let nextID = Atomic<Int>(1)
    private let writers = Locked<[(String, TestThread)]>([])

    init() { pointer = RCUPointer(Tracked(id: 0, ledger: ledger)) }

    /// Inside `section`: starts a writer, waits `milliseconds`, and asserts that the writer's
    /// grace period has not ended and the object seen in the section is not freed.
    func expectProtected(
        _ section: borrowing RCUReadSection<Flavor>, _ label: String, milliseconds: UInt32 = 200,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        pointer.withValue(in: section) { seen in
            let id = seen.id
            let done = Flag()
            let newID = nextID.add(1, ordering: .relaxed).newValue * 1000
            let writer = startThread(named: "oracle-writer") { [self] in
                pointer.replaceAndSynchronize(with: Tracked(id: newID, ledger: ledger))
                done.set()
            }
            writers.withLock { $0.append((label, writer)) }
            usleep(milliseconds * 1000)
            XCTAssertFalse(done.isSet, "\(Flavor.name) \(label): a grace period ended inside the section", file: file, line: line)
            XCTAssertFalse(ledger.isFreed(id), "\(Flavor.name) \(label): the section's object was freed under it", file: file, line: line)
            XCTAssertTrue(seen.isAlive, "\(Flavor.name) \(label): the section's object is dead", file: file, line: line)
        } ?? XCTFail("\(Flavor.name) \(label): nothing published", file: file, line: line)
    }

    /// After the sections: every writer's grace period must end (no hang, no stalled thread).
    func drain(timeout: Double = 20, file: StaticString = #filePath, line: UInt = #line) {
        let pending = writers.withLock { w in defer { w = [] }; return w }
        for (label, writer) in pending {
            XCTAssertEqual(writer.wait(timeout: .now() + timeout), DispatchTimeoutResult.success,
                           "\(Flavor.name) \(label): the writer's grace period never ended after the section", file: file, line: line)
        }
    }
}

struct ProbeError: Error {}

/// Probes of the read side from the public API, as a hostile user would write them:
/// state changes inside and around sections, nesting, throws, other threads, callbacks.
final class AdversarialReadSideTests: XCTestCase {
    private var recorder: MisuseRecorder!

    override func setUp() { recorder = MisuseRecorder() }
    override func tearDown() { recorder.stop() }

    /// Control: outside a section the oracle's writer finishes, so the oracle can fail.
    func testOracleWriterFinishesWithNoReader() {
        let oracle = GracePeriodOracle<RCUQSBR>()
        let done = startThread(named: "control-writer") {
            oracle.pointer.replaceAndSynchronize(with: Tracked(id: 99, ledger: oracle.ledger))
        }
        XCTAssertEqual(done.wait(timeout: .now() + 10), .success)
        XCTAssertTrue(oracle.ledger.isFreed(0))
    }

    func testQSBRGenericSectionOnUnregisteredThenOfflineThread() {
        let oracle = GracePeriodOracle<RCUQSBR>()
        onThread(named: "adv-qsbr-gen") {
            XCTAssertFalse(RCUQSBR.isThreadRegistered)
            RCUQSBR.read { oracle.expectProtected($0, "unregistered thread") }
            XCTAssertFalse(RCUQSBR.isOnline)
            RCUQSBR.read { oracle.expectProtected($0, "registered offline thread") }
            XCTAssertFalse(RCUQSBR.isOnline)
            XCTAssertFalse(RCUQSBR.isInReadSection)
        }
        oracle.drain()
        XCTAssertEqual(recorder.kinds, [])
    }

    /// The inner section finds the thread online: its exit must not take it offline.
    func testQSBRNestedGenericInnerExitKeepsOuterProtected() {
        let oracle = GracePeriodOracle<RCUQSBR>()
        onThread(named: "adv-qsbr-nest") {
            RCUQSBR.read { outer in
                RCUQSBR.read { _ in RCUQSBR.read { _ in } }
                XCTAssertTrue(RCUQSBR.isOnline)
                oracle.expectProtected(outer, "after nested inner sections")
                RCUQSBR.withReader { reader in
                    reader.read { _ in }
                    RCUQSBR.read { _ in }
                }
                XCTAssertTrue(RCUQSBR.isOnline)
                oracle.expectProtected(outer, "after a reader scope inside the section")
            }
            XCTAssertFalse(RCUQSBR.isOnline)
        }
        oracle.drain()
        XCTAssertEqual(recorder.kinds, [])
    }

    func testQSBRThrowsOutOfSections() {
        let oracle = GracePeriodOracle<RCUQSBR>()
        onThread(named: "adv-qsbr-throw") {
            do {
                try RCUQSBR.read { (outer) throws(ProbeError) in
                    do {
                        try RCUQSBR.read { (_) throws(ProbeError) in throw ProbeError() }
                    } catch {}
                    oracle.expectProtected(outer, "after an inner section threw")
                    throw ProbeError()
                }
            } catch {}
            XCTAssertFalse(RCUQSBR.isOnline, "the throwing outer section took the thread offline")
            XCTAssertFalse(RCUQSBR.isInReadSection)
            RCUQSBR.withReader { reader in
                do {
                    try reader.read { (_) throws(ProbeError) in throw ProbeError() }
                } catch {}
                XCTAssertTrue(RCUQSBR.isOnline)
                XCTAssertFalse(RCUQSBR.isInReadSection)
                reader.offline {
                    do {
                        try reader.read { (section) throws(ProbeError) in
                            oracle.expectProtected(section, "offline scope section that throws")
                            throw ProbeError()
                        }
                    } catch {}
                    XCTAssertFalse(RCUQSBR.isOnline, "back offline after the throwing section")
                }
                reader.quiescentState()
            }
            XCTAssertFalse(RCUQSBR.isOnline)
        }
        oracle.drain()
        XCTAssertEqual(recorder.kinds, [], "depth balanced: no misuse from quiescentState")
    }

    /// Early returns from nested closures (a `return` inside `withValue` inside a section).
    func testQSBREarlyReturns() {
        let oracle = GracePeriodOracle<RCUQSBR>()
        onThread(named: "adv-qsbr-return") {
            func firstID() -> Int {
                RCUQSBR.read { section in
                    for _ in 0..<3 {
                        if let id = oracle.pointer.withValue(in: section, { $0.id }) { return id }
                    }
                    return -1
                }
            }
            XCTAssertEqual(firstID(), 0)
            XCTAssertFalse(RCUQSBR.isOnline)
            XCTAssertFalse(RCUQSBR.isInReadSection)
        }
    }

    func testQSBRSectionsInOfflineScope() {
        let oracle = GracePeriodOracle<RCUQSBR>()
        onThread(named: "adv-qsbr-offl") {
            RCUQSBR.withReader { reader in
                reader.offline {
                    XCTAssertFalse(RCUQSBR.isOnline)
                    reader.read { section in
                        XCTAssertTrue(RCUQSBR.isOnline)
                        RCUQSBR.read { _ in }
                        reader.read { _ in }
                        XCTAssertTrue(RCUQSBR.isOnline, "still online after the nested sections")
                        oracle.expectProtected(section, "scope section in offline(), after nested ones")
                    }
                    XCTAssertFalse(RCUQSBR.isOnline)
                    RCUQSBR.read { section in oracle.expectProtected(section, "generic section in offline()") }
                    XCTAssertFalse(RCUQSBR.isOnline)
                    reader.quiescentState()     // offline: a no-op, must not bring it online
                    XCTAssertFalse(RCUQSBR.isOnline)
                    RCUQSBR.offline {
                        RCUQSBR.read { section in oracle.expectProtected(section, "offline() in offline()") }
                    }
                    XCTAssertFalse(RCUQSBR.isOnline)
                    // A scope opened while offline brings the thread online, and its exit back.
                    RCUQSBR.withReader { inner in
                        XCTAssertTrue(RCUQSBR.isOnline)
                        inner.read { section in oracle.expectProtected(section, "inner scope in offline()") }
                        inner.quiescentState()
                    }
                    XCTAssertFalse(RCUQSBR.isOnline)
                }
                XCTAssertTrue(RCUQSBR.isOnline)
                reader.quiescentState()
            }
            XCTAssertFalse(RCUQSBR.isOnline)
        }
        oracle.drain()
        XCTAssertEqual(recorder.kinds, [])
    }

    /// Every call that would end this thread's protection is refused inside a section,
    /// and the section stays protected after the refusal.
    func testQSBRRefusedCallsInsideSectionKeepProtection() {
        let oracle = GracePeriodOracle<RCUQSBR>()
        let other = RCUPointer<Tracked, RCUQSBR>(Tracked(id: 5, ledger: oracle.ledger))
        onThread(named: "adv-qsbr-refuse") {
            RCUQSBR.read { section in
                RCUQSBR.offline { oracle.expectProtected(section, "inside a refused offline()") }
                RCUQSBR.quiescentState()
                RCUQSBR.unregisterThread()
                RCUQSBR.registerThread()
                RCUQSBR.synchronize()
                RCUQSBR.barrier()
                other.replaceAndSynchronize(with: Tracked(id: 6, ledger: oracle.ledger))
                RCUQSBR.synchronize(since: RCUQSBR.startGracePeriod())
                XCTAssertTrue(RCUQSBR.isOnline)
                oracle.expectProtected(section, "after the refused calls")
            }
            XCTAssertFalse(RCUQSBR.isOnline)
            RCUQSBR.withReader { reader in
                reader.read { section in
                    reader.quiescentState()
                    reader.offline { oracle.expectProtected(section, "inside a refused reader.offline()") }
                    RCUQSBR.withReader { inner in inner.offline { } }
                    oracle.expectProtected(section, "after refused reader calls")
                }
                reader.quiescentState()
            }
        }
        oracle.drain()
        XCTAssertEqual(recorder.kinds, [
            .offlineInReadSection, .offlineInReadSection, .unregisterInReadSection,
            .synchronizeInReadSection, .barrierInReadSection, .synchronizeInReadSection, .synchronizeInReadSection,
            .offlineInReadSection, .offlineInReadSection, .offlineInReadSection,
        ])
        XCTAssertTrue(oracle.ledger.isFreed(6), "the refused replaceAndSynchronize published nothing")
        XCTAssertFalse(oracle.ledger.isFreed(5), "and kept the old object")
        XCTAssertEqual(other.protectedValue?.id, 5)
    }

    /// Sections in a callback on the qsbr call_rcu worker: the worker stays online (liburcu
    /// expects it), and the next grace periods still end.
    func testQSBRSectionsInCallbacks() {
        let oracle = GracePeriodOracle<RCUQSBR>()
        let seen = Locked<[String: Bool]>([:])
        RCUQSBR.retire {
            seen.withLock { $0["onlineBefore"] = RCUQSBR.isOnline }
            RCUQSBR.read { section in
                _ = oracle.pointer.withValue(in: section) { $0.id }
                RCUQSBR.read { _ in }
            }
            seen.withLock { $0["onlineAfterSection"] = RCUQSBR.isOnline }
            RCUQSBR.offline {
                RCUQSBR.read { _ in seen.withLock { $0["onlineInOfflineSection"] = RCUQSBR.isOnline } }
                seen.withLock { $0["onlineAfterOfflineSection"] = RCUQSBR.isOnline }
            }
            seen.withLock { $0["onlineAfterOffline"] = RCUQSBR.isOnline }
            do {
                try RCUQSBR.read { (_) throws(ProbeError) in throw ProbeError() }
            } catch {}
            seen.withLock { $0["onlineAfterThrow"] = RCUQSBR.isOnline; $0["inSection"] = RCUQSBR.isInReadSection }
        }
        RCUQSBR.barrier()
        XCTAssertEqual(seen.withLock { $0 }, [
            "onlineBefore": true, "onlineAfterSection": true, "onlineInOfflineSection": true,
            "onlineAfterOfflineSection": false, "onlineAfterOffline": true, "onlineAfterThrow": true, "inSection": false,
        ])
        let done = startThread(named: "after-cb") { RCUQSBR.synchronize(); RCUQSBR.barrier() }
        XCTAssertEqual(done.wait(timeout: .now() + 20), .success, "grace periods still end")
        XCTAssertEqual(recorder.kinds, [])
    }

    func testQSBRDeepNesting() {
        let oracle = GracePeriodOracle<RCUQSBR>()
        onThread(named: "adv-qsbr-deep") {
            func nest(_ depth: Int, _ section: borrowing RCUReadSection<RCUQSBR>) {
                if depth == 0 {
                    oracle.expectProtected(section, "at depth 5000")
                    return
                }
                RCUQSBR.read { inner in nest(depth - 1, inner) }
            }
            RCUQSBR.read { nest(5_000, $0) }
            XCTAssertFalse(RCUQSBR.isOnline)
            XCTAssertFalse(RCUQSBR.isInReadSection)
        }
        oracle.drain()
        XCTAssertEqual(recorder.kinds, [])
    }

    /// A reader borrowed into `DispatchQueue.sync` (non-escaping, not `@Sendable`): Dispatch
    /// may run the block on the calling thread; either way the sections are protected.
    /// (`concurrentPerform` does not compile: its closure is `@Sendable` and a reader is not.)
    func testReaderSectionsInDispatchSyncPerFlavor() {
        checkReaderInDispatchSync(RCUQSBR.self)
        checkReaderInDispatchSync(RCUMemb.self)
        checkReaderInDispatchSync(RCUMemoryBarrier.self)
        checkReaderInDispatchSync(RCUBulletproof.self)
    }

    private func checkReaderInDispatchSync<F: RCUFlavor>(_: F.Type) {
        let oracle = GracePeriodOracle<F>()
        onThread(named: "adv-sync-\(F.name)") {
            let queue = DispatchQueue(label: "adv-sync")
            F.withReader { reader in
                queue.sync {
                    reader.read { section in
                        F.read { _ in }
                        oracle.expectProtected(section, "reader section in DispatchQueue.sync")
                    }
                }
                F.quiescentStateIfQSBR()
            }
        }
        oracle.drain()
        XCTAssertTrue(recorder.kinds.allSatisfy { $0 == .readerOnAnotherThread }, "\(recorder.kinds)")
    }

    /// Generic sections in tasks that hop threads leave no thread online.
    func testQSBRSectionsInTasksLeaveNoThreadOnline() async {
        let oracle = GracePeriodOracle<RCUQSBR>()
        await withTaskGroup(of: Void.self) { group in
            for task in 0..<8 {
                group.addTask {
                    for _ in 0..<50 {
                        RCUQSBR.read { section in _ = oracle.pointer.withValue(in: section) { $0.id } }
                        await Task.yield()
                        RCUQSBR.read { _ in RCUQSBR.read { _ in } }
                        XCTAssertFalse(RCUQSBR.isOnline, "task \(task)")
                    }
                }
            }
        }
        let done = startThread(named: "after-tasks") {
            oracle.pointer.replaceAndSynchronize(with: Tracked(id: 7, ledger: oracle.ledger))
        }
        XCTAssertEqual(done.wait(timeout: .now() + 20), .success, "no task thread was left online")
        XCTAssertEqual(recorder.kinds, [])
    }

    /// replaceAndSynchronize, now inlinable: refused whole inside a section and in a callback,
    /// for every flavor; on an online qsbr thread outside a section it waits offline and returns.
    func testReplaceAndSynchronizeRefusalsPerFlavor() {
        checkReplaceAndSynchronize(RCUQSBR.self)
        checkReplaceAndSynchronize(RCUMemb.self)
        checkReplaceAndSynchronize(RCUMemoryBarrier.self)
        checkReplaceAndSynchronize(RCUBulletproof.self)
    }

    private func checkReplaceAndSynchronize<F: RCUFlavor>(_: F.Type) {
        let before = recorder.kinds.count
        let ledger = Ledger()
        let pointer = RCUPointer<Tracked, F>(Tracked(id: 1, ledger: ledger))
        onThread(named: "adv-ras-\(F.name)") {
            F.read { _ in pointer.replaceAndSynchronize(with: Tracked(id: 2, ledger: ledger)) }
            F.withReader { reader in
                reader.read { _ in pointer.replaceAndSynchronize(with: Tracked(id: 3, ledger: ledger)) }
            }
        }
        let inCallback = DispatchSemaphore(value: 0)
        F.retire {
            pointer.replaceAndSynchronize(with: Tracked(id: 4, ledger: ledger))
            inCallback.signal()
        }
        XCTAssertEqual(inCallback.wait(timeout: .now() + 20), .success)
        XCTAssertEqual(Array(recorder.kinds.dropFirst(before)),
                       [.synchronizeInReadSection, .synchronizeInReadSection, .synchronizeInCallback], F.name)
        XCTAssertEqual(pointer.protectedValue?.id, 1, "\(F.name): nothing published by the refused calls")
        XCTAssertFalse(ledger.isFreed(1))
        let done = startThread(named: "adv-ras-ok-\(F.name)") {
            F.withReader { reader in
                reader.read { _ in }
                pointer.replaceAndSynchronize(with: Tracked(id: 5, ledger: ledger))
                if F.flavorDescription.isQSBR { XCTAssertTrue(RCUQSBR.isOnline, "back online after the wait") }
            }
        }
        XCTAssertEqual(done.wait(timeout: .now() + 20), .success, "\(F.name): replaceAndSynchronize in a scope returns")
        XCTAssertTrue(ledger.isFreed(1), "\(F.name): the old object is released after the grace period")
        XCTAssertEqual(pointer.protectedValue?.id, 5)
    }

    /// memb, mb and bp: scope sections and generic sections nested either way stay protected.
    func testScopeAndGenericNestingPerFlavor() {
        checkScopeAndGenericNesting(RCUMemb.self)
        checkScopeAndGenericNesting(RCUMemoryBarrier.self)
        checkScopeAndGenericNesting(RCUBulletproof.self)
        checkScopeAndGenericNesting(RCUQSBR.self)
    }

    private func checkScopeAndGenericNesting<F: RCUFlavor>(_: F.Type) {
        let oracle = GracePeriodOracle<F>()
        onThread(named: "adv-mix-\(F.name)") {
            F.withReader { reader in
                reader.read { section in
                    F.read { _ in reader.read { _ in } }
                    oracle.expectProtected(section, "scope section after nested ones")
                }
                F.read { section in
                    reader.read { _ in }
                    oracle.expectProtected(section, "generic section in a scope")
                }
                F.quiescentStateIfQSBR()
            }
            F.read { section in
                F.withReader { reader in reader.read { _ in } }
                oracle.expectProtected(section, "generic section after a scope inside it")
            }
            XCTAssertFalse(F.isInReadSection)
        }
        oracle.drain()
        XCTAssertEqual(recorder.kinds, [])
    }

    /// A thread that blocks inside a generic qsbr section (brought online by the section's
    /// inline path) or inside a scope section in `offline()` holds up grace periods: the
    /// stall detector must name it, not let `synchronize()` hang without a word.
    func testQSBRBlockedSectionIsNamedByTheStallDetector() {
        checkBlockedSectionNamed("adv-blk-generic") { body in RCUQSBR.read { _ in body() } }
        checkBlockedSectionNamed("adv-blk-offline") { body in
            RCUQSBR.withReader { reader in
                reader.offline { reader.read { _ in body() } }
                reader.quiescentState()
            }
        }
    }

    private func checkBlockedSectionNamed(_ name: String, _ section: @escaping @Sendable (() -> Void) -> Void) {
        withCollectedStalls(threshold: .milliseconds(100)) { stalls in
            let entered = DispatchSemaphore(value: 0)
            let release = Flag()
            let reader = startThread(named: name) {
                section {
                    entered.signal()
                    while !release.isSet { usleep(1_000) }
                }
            }
            entered.wait()
            let writer = startThread(named: "adv-blk-writer") { RCUQSBR.synchronize() }
            let deadline = Date().addingTimeInterval(10)
            // Until the writer's own stall is reported (another wait, such as a call_rcu
            // worker's, may be reported first).
            while stalls.withLock({ !$0.contains { $0.call == "synchronize()" } }) && Date() < deadline { usleep(5_000) }
            release.set()
            XCTAssertEqual(writer.wait(timeout: .now() + 20), .success, "\(name): the grace period ended once the section did")
            XCTAssertEqual(reader.wait(timeout: .now() + 20), .success)
            let stall = stalls.withLock { $0.first { $0.call == "synchronize()" } }
            // Among the readers named (a thread another test left online would be named too).
            let named = stall?.blockingReaders.map(\.name) ?? []
            XCTAssertTrue(named.contains(name), "\(name): the blocked section's thread is named, in \(named)")
        }
    }

    /// A qsbr stress: readers mix every way of opening sections with offline stretches and
    /// quiescent states while writers replace and free continuously; every object a
    /// section sees must be alive.
    func testQSBRMixedReadersStress() {
        let ledger = Ledger()
        let pointer = RCUPointer<Tracked, RCUQSBR>(Tracked(id: 0, value: 0, ledger: ledger))
        let stop = Atomic<Bool>(false)
        let dead = Atomic<Int>(0)
        let reads = Atomic<Int>(0)
        @Sendable func look(_ section: borrowing RCUReadSection<RCUQSBR>) {
            pointer.withValue(in: section) { object in
                if !object.isAlive { dead.add(1, ordering: .relaxed) }
                reads.add(1, ordering: .relaxed)
            }
        }
        var done: [TestThread] = []
        for reader in 0..<3 {
            done.append(startThread(named: "adv-mix-r\(reader)") {
                var round = 0
                while !stop.load(ordering: .relaxed) {
                    round += 1
                    switch round % 4 {
                    case 0:
                        RCUQSBR.read { s in look(s); RCUQSBR.read { look($0) }; look(s) }
                    case 1:
                        RCUQSBR.withReader { r in
                            for _ in 0..<50 { r.read { s in look(s); RCUQSBR.read { look($0) } }; r.quiescentState() }
                            r.offline { r.read { s in look(s); r.read { look($0) }; look(s) } }
                        }
                    case 2:
                        RCUQSBR.withReader { r in
                            r.read { s in
                                RCUQSBR.withReader { inner in inner.read { look($0) } }
                                look(s)
                            }
                            r.quiescentState()
                        }
                    default:
                        do {
                            try RCUQSBR.read { (s) throws(ProbeError) in look(s); throw ProbeError() }
                        } catch {}
                        RCUQSBR.offline { RCUQSBR.read { look($0) } }
                    }
                }
            })
        }
        for writer in 0..<2 {
            done.append(startThread(named: "adv-mix-w\(writer)") {
                var id = (writer + 1) * 10_000_000
                while !stop.load(ordering: .relaxed) {
                    id += 1
                    if id % 8 == 0 {
                        pointer.replaceAndSynchronize(with: Tracked(id: id, ledger: ledger))
                    } else {
                        pointer.replace(with: Tracked(id: id, ledger: ledger))
                    }
                }
            })
        }
        usleep(longTests ? 30_000_000 : 3_000_000)
        stop.store(true, ordering: .relaxed)
        for semaphore in done { XCTAssertEqual(semaphore.wait(timeout: .now() + 30), .success) }
        RCUQSBR.barrier()
        XCTAssertEqual(dead.load(ordering: .relaxed), 0, "a section saw a freed object")
        XCTAssertGreaterThan(reads.load(ordering: .relaxed), 1000)
        XCTAssertGreaterThan(ledger.freedCount, 100, "writers freed objects meanwhile")
        XCTAssertEqual(ledger.doubleFrees, 0)
        XCTAssertEqual(recorder.kinds, [])
    }
}
