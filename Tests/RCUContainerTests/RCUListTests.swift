import Foundation
import RCU
import XCTest

final class RCUListTests: XCTestCase {
    // MARK: Semantics

    func testAddRemoveReplaceAndIterationOrder() {
        let ledger = Ledger()
        let lock = RCUWriterMutex()
        var list: RCUList<Tracked, RCUMemb>? = RCUList(lock: lock)
        var nodes: [RCUListNode<Tracked>] = lock.withLock {
            [list!.append(Tracked(id: 1, ledger: ledger)),
             list!.append(Tracked(id: 2, ledger: ledger)),
             list!.prepend(Tracked(id: 0, ledger: ledger))]
        }
        func ids() -> [Int] { RCUMemb.read { s in var r: [Int] = []; list!.forEach(in: s) { r.append($0.id) }; return r } }
        XCTAssertEqual(ids(), [0, 1, 2])
        let replacement = lock.withLock { list!.replace(nodes[0], with: Tracked(id: 10, ledger: ledger)) }
        XCTAssertEqual(ids(), [0, 10, 2])
        XCTAssertFalse(nodes[0].isLinked)
        XCTAssertTrue(replacement.isLinked)
        XCTAssertTrue(lock.withLock { list!.remove(nodes[2]) })
        XCTAssertEqual(ids(), [10, 2])
        XCTAssertEqual(RCUMemb.read { s in list!.count(in: s) }, 2)
        XCTAssertTrue(RCUMemb.read { s in list!.contains(in: s) { $0.id == 2 } })
        let found = RCUMemb.read { s in list!.firstNode(in: s) { $0.id == 10 } }
        XCTAssertTrue(found === replacement)
        XCTAssertEqual(lock.withLock { list!.removeAll { $0.id == 2 } }, 1)
        XCTAssertEqual(ids(), [10])

        nodes.removeAll()
        RCUMemb.barrier()
        XCTAssertEqual(ledger.freedCount, 3, "removed elements are freed after a grace period")
        XCTAssertFalse(ledger.isFreed(10))
        list = nil
        RCUMemb.barrier()
        XCTAssertFalse(ledger.isFreed(10), "a node handle keeps its element alive")
        withExtendedLifetime((found, replacement)) {}
        XCTAssertEqual(ledger.freedCount, 3)
        XCTAssertEqual(ledger.doubleFrees, 0)
    }

    func testFirstNonNilStopsAtTheFirstResultForEveryKindOfElement() {
        let lock = RCUWriterMutex()
        let ledger = Ledger()
        let objects = RCUList<Tracked, RCUMemb>(lock: lock)   // class: reached from the link
        let values = RCUList<Int, RCUMemb>(lock: lock)        // struct: through the node
        let existentials = RCUList<any ClassBound, RCUMemb>(lock: lock)   // two words: through the node
        lock.withLock {
            for id in 0..<5 {
                objects.append(Tracked(id: id, ledger: ledger))
                values.append(id)
                existentials.append(Tracked(id: id, ledger: ledger))
            }
        }
        RCUMemb.read { section in
            var visited = 0
            XCTAssertEqual(objects.firstNonNil(in: section) { visited += 1; return $0.id == 2 ? $0.id * 10 : nil }, 20)
            XCTAssertEqual(visited, 3, "stops at the first result")
            XCTAssertNil(objects.firstNonNil(in: section) { $0.id == 9 ? 0 : nil })
            XCTAssertEqual(values.firstNonNil(in: section) { $0 == 3 ? "three" : nil }, "three")
            XCTAssertEqual(existentials.firstNonNil(in: section) { $0.identifier == 4 ? $0.identifier : nil }, 4)
            XCTAssertTrue(objects.contains(in: section) { $0.id == 4 })
            XCTAssertFalse(values.contains(in: section) { $0 == 7 })
        }
    }

    func testDeinitReleasesLinkedElements() {
        let ledger = Ledger()
        let lock = RCUWriterMutex()
        do {
            let list = RCUList<Tracked, RCUMemb>(lock: lock)
            lock.withLock { for i in 0..<100 { list.append(Tracked(id: i, ledger: ledger)) } }
        }
        RCUMemb.barrier()
        XCTAssertEqual(ledger.freedCount, 100)
        XCTAssertEqual(ledger.doubleFrees, 0)
    }

    // MARK: Misuse

    func testMutationWithoutLockIsReportedAndSkipped() {
        let recorder = MisuseRecorder()
        defer { recorder.stop() }
        let ledger = Ledger()
        let lock = RCUWriterMutex()
        let list = RCUList<Tracked, RCUMemb>(lock: lock)
        let node = list.append(Tracked(id: 1, ledger: ledger))
        XCTAssertFalse(node.isLinked)
        let linked = lock.withLock { list.append(Tracked(id: 2, ledger: ledger)) }
        XCTAssertFalse(list.remove(linked))
        XCTAssertEqual(recorder.kinds, [.mutationWithoutLock, .mutationWithoutLock])
        XCTAssertEqual(RCUMemb.read { s in list.count(in: s) }, 1)
        let misuse = recorder.recorded[0]
        XCTAssertTrue(misuse.description.contains("RCUList.append(_:)"), misuse.description)
        XCTAssertTrue(misuse.description.contains("writer lock"), misuse.description)
        XCTAssertTrue(misuse.fileID.hasSuffix("RCUListTests.swift"))
    }

    func testLockHeldByAnotherThreadDoesNotCount() {
        let recorder = MisuseRecorder()
        defer { recorder.stop() }
        let lock = RCUWriterMutex()
        let list = RCUList<Int, RCUMemb>(lock: lock)
        let held = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        let done = startThread(named: "holder") {
            lock.withLock { held.signal(); release.wait() }
        }
        held.wait()
        list.append(1)
        release.signal()
        done.wait()
        XCTAssertEqual(recorder.kinds, [.mutationWithoutLock])
    }

    func testRemovingTwiceIsReportedAndIgnored() {
        let recorder = MisuseRecorder()
        defer { recorder.stop() }
        let lock = RCUWriterMutex()
        let list = RCUList<Int, RCUMemb>(lock: lock)
        let other = RCUList<Int, RCUMemb>(lock: lock)
        lock.withLock {
            let node = list.append(1)
            list.append(2)
            XCTAssertTrue(list.remove(node))
            XCTAssertFalse(list.remove(node))
            _ = list.replace(node, with: 3)
            let foreign = other.append(4)
            XCTAssertFalse(list.remove(foreign))
        }
        XCTAssertEqual(recorder.kinds, [.removedTwice, .removedTwice, .foreignElement])
        XCTAssertEqual(RCUMemb.read { s in list.count(in: s) }, 1)
        XCTAssertTrue(recorder.recorded[0].description.contains("already removed"))
    }

    // MARK: Stress

    func testStressMemb() { runStress(RCUMemb.self) }
    func testStressQSBR() { runStress(RCUQSBR.self) }
    func testStressBulletproof() { runStress(RCUBulletproof.self) }
    func testStressMemoryBarrier() { runStress(RCUMemoryBarrier.self) }

    /// Two readers traverse while a writer adds at both ends, removes and
    /// replaces: no reader sees an element twice in one traversal or a freed
    /// one, the final contents match the writer's model, and every removed
    /// element is freed exactly once after `barrier()`.
    func runStress<Flavor: RCUFlavor>(_: Flavor.Type) {
        let ledger = Ledger()
        let lock = RCUWriterMutex()
        let created: Int
        do {
            let shared = RCUList<Tracked, Flavor>(lock: lock)
            let stop = Flag()
            let violations = Violations()
            let traversals = Locked(0)
            let readers = (0..<2).map { index in
                startThread(named: "list-reader-\(index)") {
                    var count = 0
                    while !stop.isSet {
                        Flavor.read { section in
                            var seen = Set<Int>()
                            shared.forEach(in: section) { element in
                                if !element.isAlive { violations.record("freed element \(element.id) seen") }
                                if !seen.insert(element.id).inserted {
                                    violations.record("element \(element.id) seen twice")
                                }
                            }
                            // The early-exit search reaches class elements from their links.
                            let target = seen.first ?? -1
                            _ = shared.firstNonNil(in: section) { element -> Int? in
                                if !element.isAlive { violations.record("freed element \(element.id) seen by firstNonNil") }
                                return element.id == target ? element.id : nil
                            }
                        }
                        count += 1
                    }
                    traversals.withLock { $0 += count }
                }
            }

            var model: [RCUListNode<Tracked>] = []
            var rng = SplitMix64(seed: 42)
            var nextID = 0
            var removed = 0
            let deadline = Date().addingTimeInterval(stressDuration)
            var operations = 0
            while Date() < deadline || operations < 2000 {
                lock.withLock {
                    switch Int.random(in: 0..<4, using: &rng) {
                    case 0 where model.count < 64:
                        model.append(shared.append(Tracked(id: nextID, ledger: ledger)))
                        nextID += 1
                    case 1 where model.count < 64:
                        model.insert(shared.prepend(Tracked(id: nextID, ledger: ledger)), at: 0)
                        nextID += 1
                    case 2 where !model.isEmpty:
                        let index = Int.random(in: 0..<model.count, using: &rng)
                        model[index] = shared.replace(model[index], with: Tracked(id: nextID, ledger: ledger))
                        nextID += 1
                        removed += 1
                    case 3 where !model.isEmpty:
                        let index = Int.random(in: 0..<model.count, using: &rng)
                        XCTAssertTrue(shared.remove(model.remove(at: index)))
                        removed += 1
                    default:
                        break
                    }
                }
                operations += 1
            }
            stop.set()
            readers.forEach { $0.wait() }

            XCTAssertEqual(violations.all, [])
            let contents = Flavor.read { section in
                var ids: [Int] = []
                shared.forEach(in: section) { ids.append($0.id) }
                return ids
            }
            XCTAssertEqual(contents, model.map(\.element.id), "final contents match the writer's model")
            XCTAssertGreaterThan(traversals.withLock { $0 }, 0)

            Flavor.barrier()
            XCTAssertEqual(ledger.freedCount, removed, "every removed element is freed after barrier()")
            XCTAssertEqual(ledger.doubleFrees, 0)
            XCTAssertFalse(model.contains { ledger.isFreed($0.element.id) }, "no element in the list was freed")

            created = ledger.createdCount
        }
        // The list is gone (reader threads may release their closures a little later).
        Flavor.barrier()
        XCTAssertTrue(ledger.waitForFreed(created), "every element is freed once the list is gone")
        XCTAssertEqual(ledger.freedCount, created)
        XCTAssertEqual(ledger.doubleFrees, 0)
    }
}

/// A class-bound protocol: `any ClassBound` is a class reference plus a witness table.
protocol ClassBound: AnyObject, Sendable { var identifier: Int { get } }
extension Tracked: ClassBound { var identifier: Int { id } }
