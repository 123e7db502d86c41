import Foundation
import Lockdep
import RCU
import Synchronization
import Testing
import XCTest

/// The reader model's misuse catalogue: each way safe code could once read freed
/// memory, and what a user gets now. Where the fix is a type, the code that no
/// longer compiles is quoted; otherwise the test shows the named report, that the
/// call was refused whole, and that readers stayed protected.
///
/// No longer compiles (the reader and section types are the fix):
///
/// ```swift
/// // 1. A reader held across an await: a reader exists only as the borrowed
/// //    parameter of withReader's synchronous closure.
/// let reader = RCUReader<RCUMemb>()            // error: initializer is inaccessible
/// await RCUMemb.withReader { reader in await work() }
///                                             // error: 'async' call in a function that does not support concurrency
/// // 2. Two readers whose lifetimes overlap without nesting: scopes are closures, so they nest.
/// // 5. A QSBR reader outliving the generic section it was made in: same reason.
/// // 9. An unbalanced unlock inside a section: there is no public unlock.
/// RCUMemb.read { _ in RCUMemb.readUnlock() }   // error: type 'RCUMemb' has no member 'readUnlock'
/// RCUMemb.primitiveReadUnlock()                // error: inaccessible due to 'internal' protection level
/// // Found by the adversarial review: a lock that always answered "held" guarded a list.
/// struct Liar: RCUWriterLock { var isHeldByCurrentThread: Bool { true } }
/// RCUList<Int, RCUMemb>(lock: Liar())           // error: no RCUList initializer takes a Liar
/// ```
final class MisuseCatalogTests: XCTestCase {
    private var recorder: MisuseRecorder!

    override func setUp() { recorder = MisuseRecorder() }
    override func tearDown() { recorder.stop() }

    // MARK: 1. Readers in tasks

    /// Tasks read on whatever pool thread runs them, across suspensions, while a writer
    /// thread replaces and retires the object: every object seen is alive.
    func testReadersInTasksSeeNoFreedObject() async {
        let ledger = Ledger()
        let memb = PointerHolder<RCUMemb>(Tracked(id: 0, ledger: ledger))
        let qsbr = PointerHolder<RCUQSBR>(Tracked(id: 0, ledger: ledger))
        let stop = Atomic<Bool>(false)
        let writer = startThread(named: "task-writer") {
            var id = 1
            while !stop.load(ordering: .relaxed) {
                memb.pointer.replace(with: Tracked(id: id, ledger: ledger))
                qsbr.pointer.replace(with: Tracked(id: id, ledger: ledger))
                id += 1
                if id % 64 == 0 { usleep(100) }
            }
        }
        let dead = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    var dead = 0
                    for _ in 0..<400 {
                        RCUMemb.read { section in
                            memb.pointer.withValue(in: section) { if !$0.isAlive { dead += 1 } }
                        }
                        await Task.yield()   // resumes on any pool thread
                        RCUQSBR.withReader { reader in
                            for _ in 0..<4 {
                                reader.read { section in
                                    qsbr.pointer.withValue(in: section) { if !$0.isAlive { dead += 1 } }
                                }
                                reader.quiescentState()
                            }
                        }
                        await Task.yield()
                    }
                    return dead
                }
            }
            return await group.reduce(0, +)
        }
        stop.store(true, ordering: .relaxed)
        writer.wait()
        XCTAssertEqual(dead, 0, "a task read a freed object")
        XCTAssertFalse(RCUQSBR.isOnline, "no pool thread was left online")
        XCTAssertEqual(recorder.kinds, [])
    }

    /// Found by the adversarial review: Dispatch runs a non-Sendable closure on another
    /// thread (`withoutActuallyEscaping` + `DispatchWorkItem`), so one reader can run
    /// sections on two threads at once. Each section is counted in the state of the
    /// thread that runs it, and stays protected.
    func testOneReaderOnTwoThreadsAtOnceStaysProtected() throws {
        try XCTSkipIf(runningUnderThreadSanitizer, "libdispatch's hand-off is invisible to ThreadSanitizer")
        let ledger = Ledger()
        let holder = PointerHolder<RCUMemb>(Tracked(id: 0, ledger: ledger))
        let stop = Atomic<Bool>(false)
        let writer = startThread(named: "two-thread-writer") {
            var id = 1
            while !stop.load(ordering: .relaxed) {
                holder.pointer.replaceAndSynchronize(with: Tracked(id: id, ledger: ledger))
                id += 1
            }
        }
        let bad = Atomic<Int>(0)
        onThread(named: "two-thread-scope") {
            RCUMemb.withReader { reader in
                runOnAnotherThreadToo {
                    for _ in 0..<20_000 {
                        reader.read { section in
                            if !RCUMemb.isInReadSection { bad.add(1, ordering: .relaxed) }
                            holder.pointer.withValue(in: section) { if !$0.isAlive { bad.add(1, ordering: .relaxed) } }
                        }
                    }
                }
                XCTAssertFalse(RCUMemb.isInReadSection, "the scope thread's count is balanced")
            }
        }
        stop.store(true, ordering: .relaxed)
        writer.wait()
        XCTAssertEqual(bad.load(ordering: .relaxed), 0, "a section was unprotected")
        #if DEBUG
        XCTAssertTrue(recorder.kinds.allSatisfy { $0 == .readerOnAnotherThread })
        XCTAssertFalse(recorder.kinds.isEmpty, "debug builds name the reader used on another thread")
        #else
        XCTAssertEqual(recorder.kinds, [])
        #endif
    }

    // MARK: 3. Unregistering inside a section

    func testUnregisterFromCallbackIsRefused() {
        RCUMemb.retire { RCUMemb.unregisterThread() }
        RCUMemb.barrier()
        XCTAssertEqual(recorder.kinds, [.unregisterInCallback])
        RCUMemb.synchronize()   // the worker liburcu registered is intact
    }

    // MARK: 4. A QSBR read inside offline

    func testQSBRReadInsideOfflineIsProtected() {
        onThread(named: "qsbr-offline-read") {
            RCUQSBR.withReader { reader in
                reader.offline {
                    XCTAssertFalse(RCUQSBR.isOnline)
                    reader.read { _ in XCTAssertTrue(RCUQSBR.isOnline, "the section went online") }
                    XCTAssertFalse(RCUQSBR.isOnline, "and offline again after it")
                    assertSectionProtects(RCUQSBR.self, reader: reader)
                }
                XCTAssertTrue(RCUQSBR.isOnline)
            }
        }
        XCTAssertEqual(recorder.kinds, [])
    }

    // MARK: 5. A QSBR reader made inside a generic section

    func testQSBRReaderInsideGenericSectionEndsWithIt() {
        onThread(named: "qsbr-nested") {
            XCTAssertFalse(RCUQSBR.isOnline)
            RCUQSBR.read { _ in
                RCUQSBR.withReader { reader in
                    reader.read { _ in XCTAssertTrue(RCUQSBR.isInReadSection) }
                    reader.quiescentState()   // refused: the outer section is still open
                }
                XCTAssertTrue(RCUQSBR.isOnline, "the section still needs the thread online")
            }
            XCTAssertFalse(RCUQSBR.isOnline, "the section took the thread offline: nothing stalls")
            // A scope opened after the section has ended is online, and protects, on its own.
            RCUQSBR.withReader { reader in assertSectionProtects(RCUQSBR.self, reader: reader) }
        }
        RCUQSBR.synchronize()
        XCTAssertEqual(recorder.kinds, [.offlineInReadSection])
    }

    // MARK: 6. QSBR calls that end protection, inside a reader's section

    func testQSBRQuiescenceAndWaitsInsideReaderSectionAreRefused() {
        onThread(named: "qsbr-refuse") {
            RCUQSBR.withReader { reader in
                reader.read { _ in
                    reader.quiescentState()
                    RCUQSBR.synchronize()
                    reader.offline { XCTAssertTrue(RCUQSBR.isOnline, "offline was refused; the body ran online") }
                    RCUQSBR.barrier()
                    XCTAssertTrue(RCUQSBR.isInReadSection)
                }
            }
        }
        XCTAssertEqual(
            recorder.kinds, [.offlineInReadSection, .synchronizeInReadSection, .offlineInReadSection, .barrierInReadSection])
        XCTAssertEqual(recorder.recorded.map(\.call), ["quiescentState()", "synchronize()", "offline(_:)", "barrier()"])
    }

    /// Found while building this: a quiescent state announced by an offline (or never
    /// registered) thread brought it online, where it then stalled every grace period.
    func testQuiescentStateOnAnOfflineThreadKeepsItOffline() {
        onThread(named: "qsbr-idle") {
            RCUQSBR.quiescentState()
            XCTAssertFalse(RCUQSBR.isOnline)
            RCUQSBR.registerThread()
            XCTAssertTrue(RCUQSBR.isThreadRegistered)
            XCTAssertFalse(RCUQSBR.isOnline, "an explicitly registered thread idles offline")
            RCUQSBR.quiescentState()
            RCUQSBR.offline {}
            XCTAssertFalse(RCUQSBR.isOnline, "offline {} on an offline thread leaves it offline")
            let waiter = startThread(named: "qsbr-waiter") { RCUQSBR.synchronize() }
            XCTAssertEqual(waiter.wait(timeout: .now() + 10), .success, "the idle thread held up the grace period")
        }
        XCTAssertEqual(recorder.kinds, [])
    }

    // MARK: Waits inside another flavor's section (found while building this)

    /// A grace-period wait inside any flavor's section is refused: waiting for qsbr inside a
    /// memb section while an online qsbr reader waits for memb was a cross-flavor deadlock.
    func testGracePeriodWaitInsideAnotherFlavorsSectionIsRefused() {
        let ledger = Ledger()
        let holder = PointerHolder<RCUQSBR>(Tracked(id: 1, ledger: ledger))
        RCUMemb.read { _ in
            RCUQSBR.synchronize()
            RCUQSBR.barrier()
            RCUBulletproof.deferBarrier()
            holder.pointer.replaceAndSynchronize(with: nil)
            XCTAssertThrowsNoError { try RCUMemoryBarrier.useCallbackWorkers(.shared) }
        }
        XCTAssertEqual(recorder.kinds, Array(repeating: .gracePeriodInOtherFlavorSection, count: 5))
        XCTAssertEqual(
            recorder.recorded.map(\.call),
            ["synchronize()", "barrier()", "deferBarrier()", "replaceAndSynchronize(with:)", "useCallbackWorkers(_:)"])
        XCTAssertFalse(ledger.isFreed(1), "the refused replaceAndSynchronize published nothing")
    }

    /// The other half of that deadlock: an online qsbr reader (a scope, outside any section)
    /// that waits for a memb grace period waits offline, so qsbr grace periods go on.
    func testOnlineQSBRReaderWaitsForAnotherFlavorOffline() {
        let membReader = HeldReader<RCUMemb>(named: "memb-reader")
        let qsbrReader = startThread(named: "qsbr-online") {
            RCUQSBR.withReader { _ in RCUMemb.synchronize() }   // waits for memb-reader
        }
        usleep(20_000)
        let qsbrWriter = startThread(named: "qsbr-writer") { RCUQSBR.synchronize() }
        XCTAssertEqual(qsbrWriter.wait(timeout: .now() + 10), .success, "the online qsbr reader held up qsbr")
        membReader.release()
        qsbrReader.wait()
        XCTAssertEqual(recorder.kinds, [])
    }

    /// Found by the adversarial review: freeing call_rcu workers waits for a grace period,
    /// which inside a qsbr section took the thread offline under its own section.
    func testUseCallbackWorkersIsRefusedInSectionsAndCallbacks() throws {
        try RCUQSBR.useCallbackWorkers(.perCPU)
        RCUQSBR.withReader { reader in
            reader.read { _ in
                XCTAssertThrowsNoError { try RCUQSBR.useCallbackWorkers(.shared) }
                XCTAssertTrue(RCUQSBR.isInReadSection)
            }
        }
        RCUMemb.retire { XCTAssertThrowsNoError { try RCUMemb.useCallbackWorkers(.shared) } }
        RCUMemb.barrier()
        XCTAssertEqual(recorder.kinds, [.synchronizeInReadSection, .synchronizeInCallback])
        try RCUQSBR.useCallbackWorkers(.shared)   // outside: done
        XCTAssertEqual(recorder.kinds.count, 2)
    }

    // MARK: One switch

    /// With only RCU's documented handler installed (Lockdep left trapping), an RCU
    /// misuse goes to that handler in every build: Lockdep never sees the refused wait.
    func testRCUMisuseHandlerAloneGovernsRCUMisuse() {
        recorder.stop()
        let seen = Locked<[RCUMisuse.Kind]>([])
        RCUMisuse.reportHandler = .custom { misuse in seen.withLock { $0.append(misuse.kind) } }
        defer { RCUMisuse.reportHandler = .trap }
        RCUMemb.read { _ in
            RCUMemb.synchronize()
            RCUMemb.barrier()
        }
        XCTAssertEqual(seen.withLock { $0 }, [.synchronizeInReadSection, .barrierInReadSection])
    }
}

extension PerFlavor {
    /// The catalogue's per-flavor entries; a recorder is installed for each case.
    @Suite(.onTestThread) final class MisuseCatalogTests {
        private let recorder = MisuseRecorder()
        deinit { recorder.stop() }

        // MARK: 2. Registration revoked under a reader

        @Test(arguments: allFlavors)
        func unregisterInsideReaderScopeIsRefused(_ flavor: any RCUFlavor.Type) { checkUnregisterInScope(flavor) }

        private func checkUnregisterInScope<F: RCUFlavor>(_: F.Type) {
            let before = recorder.recorded.count
            let onScope = ThreadExpectations()
            onThread(named: "scope-\(F.name)") {
                F.withReader { outer in
                    F.withReader { _ in }          // an inner scope ending does not end the outer one
                    F.unregisterThread()
                    onScope.expect(F.isThreadRegistered, "\(F.name): the scope's registration stands")
                    expectSectionProtects(F.self, reader: outer, on: onScope)
                }
            }
            onScope.record()
            let reports = recorder.recorded.dropFirst(before)
            #expect(reports.map(\.kind) == [.unregisterWhileReaderActive], "\(F.name)")
            #expect(reports.first?.call == "unregisterThread()")
            #expect(reports.first?.threadName == "scope-\(F.name)")
        }

        /// A scope's sections and generic ones share the thread's nesting, in any order
        /// (memb counts a scope's sections in the scope thread's state directly).
        @Test(arguments: allFlavors)
        func scopeAndGenericSectionsNestInAnyOrder(_ flavor: any RCUFlavor.Type) { checkNesting(flavor) }

        private func checkNesting<F: RCUFlavor>(_: F.Type) {
            let onScope = ThreadExpectations()
            onThread(named: "nest-\(F.name)") {
                F.withReader { reader in
                    F.read { _ in
                        reader.read { _ in onScope.expect(F.isInReadSection) }
                        onScope.expect(F.isInReadSection, "\(F.name): the outer generic section is still open")
                    }
                    reader.read { _ in
                        F.read { _ in }
                        onScope.expect(F.isInReadSection, "\(F.name): the outer scope section is still open")
                    }
                    onScope.expect(!F.isInReadSection, F.name)
                    expectSectionProtects(F.self, reader: reader, on: onScope)
                }
            }
            onScope.record()
            #expect(recorder.kinds == [])
        }

        // MARK: 3. Unregistering inside a section

        @Test(arguments: allFlavors)
        func unregisterInsideReadSectionIsRefused(_ flavor: any RCUFlavor.Type) { checkUnregisterInSection(flavor) }

        private func checkUnregisterInSection<F: RCUFlavor>(_: F.Type) {
            let before = recorder.recorded.count
            let onReader = ThreadExpectations()
            onThread(named: "unreg-\(F.name)") {
                F.read { _ in
                    F.unregisterThread()
                    onReader.expect(F.isInReadSection, "\(F.name)")
                }
                F.withReader { reader in expectSectionProtects(F.self, reader: reader, on: onReader) }
            }
            onReader.record()
            #expect(recorder.recorded.dropFirst(before).map(\.kind) == [.unregisterInReadSection], "\(F.name)")
        }

        // MARK: 7. A refused wait is refused whole

        @Test(arguments: allFlavors)
        func replaceAndSynchronizeInsideSectionIsRefusedWhole(_ flavor: any RCUFlavor.Type) {
            checkReplaceAndSynchronize(flavor)
        }

        private func checkReplaceAndSynchronize<F: RCUFlavor>(_: F.Type) {
            let ledger = Ledger()
            let holder = PointerHolder<F>(Tracked(id: 1, ledger: ledger))
            let before = recorder.recorded.count
            F.read { section in
                holder.pointer.replaceAndSynchronize(with: Tracked(id: 2, ledger: ledger))
                #expect(holder.pointer.withValue(in: section) { $0.id } == 1, "\(F.name): nothing was published")
            }
            #expect(recorder.recorded.dropFirst(before).map(\.kind) == [.synchronizeInReadSection], "\(F.name)")
            #expect(recorder.recorded.last?.call == "replaceAndSynchronize(with:)")
            #expect(!ledger.isFreed(1), "\(F.name): the published object was not released")
            #expect(ledger.isFreed(2), "\(F.name): the refused new object was dropped")
            holder.pointer.replaceAndSynchronize(with: nil)
            #expect(ledger.isFreed(1), "\(F.name): outside a section the call works")
        }

        // MARK: 9. No public call ends a section early

        @Test(arguments: allFlavors)
        func noPublicCallEndsASection(_ flavor: any RCUFlavor.Type) { checkSectionStaysOpen(flavor) }

        private func checkSectionStaysOpen<F: RCUFlavor>(_: F.Type) {
            let onReader = ThreadExpectations()
            onThread(named: "open-\(F.name)") {
                F.withReader { reader in
                    reader.read { _ in
                        F.unregisterThread()
                        F.synchronize()
                        F.barrier()
                        F.deferBarrier()
                        RCUQSBR.offline {}
                        RCUQSBR.quiescentState()
                        onReader.expect(F.isInReadSection, "\(F.name)")
                    }
                }
                onReader.expect(!F.isInReadSection, "\(F.name)")
            }
            onReader.record()
            #expect(!recorder.kinds.isEmpty)
        }
    }
}

private func XCTAssertThrowsNoError(
    _ body: () throws -> Void, file: StaticString = #filePath, line: UInt = #line
) {
    do { try body() } catch { XCTFail("unexpected error \(error)", file: file, line: line) }
}

/// Inside a section of `F` opened through `reader`, an object a writer thread
/// replaces meanwhile stays allocated until the section ends: the writer's grace
/// period waits for it.
private func assertSectionProtects<F: RCUFlavor>(
    _: F.Type, reader: borrowing RCUReader<F>, file: StaticString = #filePath, line: UInt = #line
) {
    for failure in sectionProtectionFailures(F.self, reader: reader) { XCTFail(failure, file: file, line: line) }
}

/// `assertSectionProtects` for Swift Testing, on a helper thread.
private func expectSectionProtects<F: RCUFlavor>(
    _: F.Type, reader: borrowing RCUReader<F>, on checks: ThreadExpectations,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    for failure in sectionProtectionFailures(F.self, reader: reader) {
        checks.expect(false, failure, sourceLocation: sourceLocation)
    }
}

/// What fails of `assertSectionProtects`'s checks (nothing: an empty list).
private func sectionProtectionFailures<F: RCUFlavor>(_: F.Type, reader: borrowing RCUReader<F>) -> [String] {
    var failures: [String] = []
    let ledger = Ledger()
    let holder = PointerHolder<F>(Tracked(id: 1, ledger: ledger))
    let waited = Atomic<Bool>(false)
    let writer = reader.read { section in
        holder.pointer.withValue(in: section) { object in
            let writer = startThread(named: "writer-\(F.name)") {
                holder.pointer.replace(with: nil)
                F.synchronize()
                waited.store(true, ordering: .releasing)
            }
            usleep(50_000)
            if waited.load(ordering: .acquiring) { failures.append("\(F.name): the grace period ended under a reader") }
            if !object.isAlive { failures.append("\(F.name)") }
            return writer
        }
    }
    RCUQSBR.offline { writer?.wait() }   // an online qsbr scope must not block online
    F.barrier()
    if !ledger.isFreed(1) { failures.append("\(F.name): reclaimed after the section") }
    return failures
}

/// Runs `body` on a dispatch worker and on the calling thread at the same time: Dispatch
/// accepts the non-Sendable closure, which `withoutActuallyEscaping` lets out.
private func runOnAnotherThreadToo(_ body: () -> Void) {
    withoutActuallyEscaping(body) { escapable in
        let box = ClosureBox(escapable)
        let item = DispatchWorkItem { box.body?() }
        DispatchQueue.global().async(execute: item)
        escapable()
        item.wait()
        box.body = nil
    }
}

private final class ClosureBox {
    var body: (() -> Void)?
    init(_ body: @escaping () -> Void) { self.body = body }
}
