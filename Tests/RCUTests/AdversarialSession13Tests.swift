import Foundation
@testable import Lockdep
import RCU
import RCUTestSupport
import XCTest

/// Adversarial tests of session 13's deferred chain keys through RCU's own sections: a read
/// section (reader scope or `Flavor.read`) stores its key as 0 until a lock above it needs
/// it. Nested sections of every flavor, reader scopes and generic sections mixed, locks between
/// them, sections left by a throw, readers in async tasks: the keys must be the eager ones and
/// every deadlock must still be reported.
final class AdversarialSession13RCUTests: XCTestCase {
    private var recorder: MisuseRecorder!

    override func setUpWithError() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "Lockdep checks are compiled out of this build")
        recorder = MisuseRecorder()
    }

    override func tearDown() { recorder?.stop() }

    /// What is wrong with the calling thread's stored chain keys: each is 0 (deferred) or the
    /// key computed eagerly from the entries' elements, and the 0s are a suffix.
    static func keyProblems() -> String? {
        let t = ThreadState.current()
        var key = Engine.chainSeed
        var sawDeferred = false
        for i in 0..<t.pointee.depth {
            let e = t.pointee.held[i]
            key = Engine.mix(key, Engine.element(node: e.node, mode: e.mode, irq: e.irqState, flags: e.flags,
                                                 nested: e.nest != nil))
            if e.chainKey == 0 { sawDeferred = true; continue }
            if sawDeferred { return "entry \(i): a known key above a deferred one" }
            if e.chainKey != key { return "entry \(i): stored \(e.chainKey) != eager \(key)" }
        }
        return nil
    }

    private struct Boom: Error {}

    /// Per flavor, in a reader scope: sections nested 20 deep (scope sections and generic
    /// `Flavor.read` alternating, past the held stack's initial capacity) with spin locks taken
    /// between them, an inner part left by a throw, repeated (the second time on cached
    /// chains); keys eager at every lock, the stack empty afterwards, nothing reported. Then
    /// the locks taken in reverse order through sections on another thread: one deadlock.
    func testNestedSectionsWithLocksBetweenPerFlavor() throws {
        try check(RCUMemb.self)
        try check(RCUMemoryBarrier.self)
        try check(RCUQSBR.self)
        try check(RCUBulletproof.self)
    }

    private func check<F: RCUFlavor>(_: F.Type) throws {
        let locks = (0..<5).map { CheckedSpinLock(class: .unique("adv13.rcu.\(F.name).spin\($0)")) }
        let problems = Locked<[String]>([])
        let depthAfter = Locked(-1)
        onThread(named: "adv13-nest-\(F.name)") {
            F.withReader { reader in
                for round in 0..<2 {
                    do {
                        try Self.nest(reader, 0, locks) { level in
                            if let p = Self.keyProblems() {
                                problems.withLock { $0.append("\(F.name) round \(round) level \(level): \(p)") }
                            }
                        }
                    } catch {}
                }
                depthAfter.value = Lockdep.heldLockCount
            }
        }
        XCTAssertEqual(problems.value, [])
        XCTAssertEqual(depthAfter.value, 0, F.name)
        XCTAssertEqual(recorder.lockdepReports.map(\.kind), [], "\(F.name): \(recorder.lockdepReports.map(\.text))")
        onThread(named: "adv13-inverse-\(F.name)") {
            F.withReader { reader in
                reader.read { _ in
                    locks[4].withLock { F.read { _ in reader.read { _ in locks[0].withLock {} } } }
                }
            }
        }
        let kinds = recorder.lockdepReports.map(\.kind)
        XCTAssertEqual(kinds, [.circularDependency], F.name)
        Lockdep.resetForTesting()
        recorder.stop()
        recorder = MisuseRecorder()
    }

    /// Sections nested from `level` to 20 (scope and generic sections alternating), a lock
    /// taken at every fourth level (`onLock` then runs under it), a throw at the bottom.
    private static func nest<F: RCUFlavor>(_ reader: borrowing RCUReader<F>, _ level: Int, _ locks: [CheckedSpinLock],
                                           _ onLock: (Int) -> Void) throws {
        if level == 20 { throw Boom() }
        if level % 2 == 0 {
            try reader.read { _ in try step(reader, level, locks, onLock) }
        } else {
            try F.read { _ in try step(reader, level, locks, onLock) }
        }
    }

    private static func step<F: RCUFlavor>(_ reader: borrowing RCUReader<F>, _ level: Int, _ locks: [CheckedSpinLock],
                                           _ onLock: (Int) -> Void) throws {
        guard level % 4 == 3 else { return try nest(reader, level + 1, locks, onLock) }
        let lock = locks[level / 4]
        lock.lock()
        defer { lock.unlock() }
        onLock(level)
        try nest(reader, level + 1, locks, onLock)
    }

    /// Sections of the four flavors nested in one another (each flavor its own map and cell),
    /// locks between them: keys eager, silent; a grace-period wait (empty write section) of
    /// memb inside memb's outer section, under a lock and another flavor's section, is
    /// reported as an illegal synchronize, once.
    func testFlavorsNestedInOneAnother() throws {
        let a = CheckedSpinLock(class: .unique("adv13.cross.a")), b = CheckedSpinLock(class: .unique("adv13.cross.b"))
        let problems = Locked<[String]>([])
        let deferredSeen = Locked(0)
        onThread(named: "adv13-cross") {
            RCUQSBR.withReader { q in
                for _ in 0..<3 {
                    RCUBulletproof.read { _ in
                        q.read { _ in
                            a.withLock {
                                RCUMemb.read { _ in
                                    RCUMemoryBarrier.read { _ in
                                        let t = ThreadState.current()
                                        if t.pointee.held[t.pointee.depth - 1].chainKey == 0 { deferredSeen.value += 1 }
                                        b.withLock {
                                            if let p = Self.keyProblems() { problems.withLock { $0.append(p) } }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        XCTAssertEqual(problems.value, [])
        XCTAssertGreaterThan(deferredSeen.value, 0, "no section was pushed deferred: the test tests nothing new")
        XCTAssertEqual(recorder.lockdepReports.map(\.kind), [])
        onThread(named: "adv13-cross-sync") {
            RCUMemb.read { _ in
                b.withLock {
                    RCUMemoryBarrier.read { _ in
                        RCUMemb.read { _ in Lockdep.emptyWriteSection(RCUMemb.lockdepMap, sleeps: false) }
                    }
                }
            }
        }
        XCTAssertEqual(recorder.lockdepReports.map(\.kind), [.illegalSynchronize])
    }

    /// Readers in async tasks (each opening its own scope, as the reader's documentation
    /// asks), nesting sections with locks between them on whatever threads the tasks run:
    /// keys eager, silent, every thread's stack empty afterwards; then an inversion from a
    /// task is reported.
    func testReadersInAsyncTasks() async throws {
        let a = CheckedSpinLock(class: .unique("adv13.task.a")), b = CheckedSpinLock(class: .unique("adv13.task.b"))
        let problems = Locked<[String]>([])
        await withTaskGroup(of: Void.self) { group in
            for n in 0..<8 {
                group.addTask {
                    for i in 0..<200 {
                        RCUMemb.withReader { reader in
                            reader.read { _ in
                                a.withLock {
                                    reader.read { _ in
                                        RCUMemb.read { _ in
                                            if (n + i) % 2 == 0 {
                                                b.withLock {
                                                    if let p = Self.keyProblems() { problems.withLock { $0.append(p) } }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                        if Lockdep.heldLockCount != 0 { problems.withLock { $0.append("held \(Lockdep.heldLockCount)") } }
                        if i % 50 == 0 { await Task.yield() }
                    }
                }
            }
        }
        XCTAssertEqual(problems.value, [])
        XCTAssertEqual(recorder.lockdepReports.map(\.kind), [])
        await Task.detached {
            RCUMemb.withReader { reader in
                reader.read { _ in b.withLock { reader.read { _ in a.withLock {} } } }
            }
        }.value
        XCTAssertEqual(recorder.lockdepReports.map(\.kind), [.circularDependency])
    }
}
