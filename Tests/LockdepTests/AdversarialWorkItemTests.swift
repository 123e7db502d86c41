import Foundation
import XCTest
@testable import Lockdep

/// Hostile uses of `WorkItem(_:on:container:)`, whose callback is stored through an
/// `unsafeBitCast` between function types: containers of every class shape reach the callback
/// as the same object, and a container whose deinit works on its own item neither deadlocks
/// nor traps.
final class AdversarialWorkItemTests: LockdepTestCase {
    class Base: @unchecked Sendable {
        let tag: Int
        let seen = Counter()
        init(tag: Int) { self.tag = tag }
    }
    final class Derived: Base, @unchecked Sendable {
        let extra = [1, 2, 3]
    }
    /// A generic class: its metadata is instantiated at run time, its layout is still one reference.
    final class GenericBox<Payload: Sendable>: @unchecked Sendable {
        let payload: Payload
        let seen = Counter()
        init(_ payload: Payload) { self.payload = payload }
    }
    protocol Tagged: AnyObject, Sendable { var tag: Int { get } }

    /// Each shape of container (subclass seen through its base, generic class, opened
    /// existential, `AnyObject`) reaches its callback as the very object queued.
    func testEveryContainerShapeReachesItsCallbackIntact() {
        let queue = WorkQueue("adv-shapes", threads: 2)
        defer { queue.shutdown() }

        let derived = Derived(tag: 7)
        let asBase: Base = derived
        let baseWork = WorkItem("adv-base", on: queue, class: .unique("work:adv-base"), container: asBase) { base in
            XCTAssertTrue(base === derived)
            XCTAssertEqual((base as? Derived)?.extra, [1, 2, 3])
            base.seen.increment()
        }

        let box = GenericBox<[String: Int]>(["a": 1])
        let boxWork = WorkItem("adv-generic", on: queue, class: .unique("work:adv-generic"), container: box) { b in
            XCTAssertEqual(b.payload["a"], 1)
            b.seen.increment()
        }

        final class TaggedImpl: Tagged, @unchecked Sendable { let tag = 99; let seen = Counter() }
        let impl = TaggedImpl()
        let existential: any Tagged = impl
        // The existential is opened: `Container` is its dynamic type, one reference wide.
        func makeTaggedWork<T: Tagged>(_ tagged: T) -> WorkItem {
            WorkItem("adv-existential", on: queue, class: .unique("work:adv-existential"), container: tagged) { t in
                XCTAssertEqual(t.tag, 99)
                (t as? TaggedImpl)?.seen.increment()
            }
        }
        let taggedWork = makeTaggedWork(existential)

        let object: any AnyObject & Sendable = box
        let anyWork = WorkItem("adv-anyobject", on: queue, class: .unique("work:adv-anyobject"), container: object) { o in
            (o as? GenericBox<[String: Int]>)?.seen.increment()
        }

        for _ in 0..<50 {
            for work in [baseWork, boxWork, taggedWork, anyWork] {
                work.queue()
                work.flush()
            }
        }
        XCTAssertEqual(derived.seen.value, 50)
        XCTAssertEqual(box.seen.value, 100)
        XCTAssertEqual(impl.seen.value, 50)
        expectSilent()
    }

    /// A container whose deinit cancels, flushes and re-enables its own item: the deinit runs
    /// where the last pin goes (on the worker, after the run, outside the queue's lock), so
    /// none of these calls waits for itself.
    final class SelfCancelling: @unchecked Sendable {
        let deinits: Counter
        var work: WorkItem?
        init(deinits: Counter) { self.deinits = deinits }
        deinit {
            if let work {
                XCTAssertFalse(work.cancelSync(), "nothing pending in the container's own deinit")
                XCTAssertFalse(work.flush(), "the run that dropped the last pin has ended")
                XCTAssertFalse(work.isPending)
            }
            deinits.increment()
        }
    }

    func testContainerDeinitCancelsItsOwnItemOnTheWorker() {
        let queue = WorkQueue("adv-self-cancel", threads: 1)
        defer { queue.shutdown() }
        let deinits = Counter()
        let runs = Counter()
        for round in 0..<20 {
            var owner: SelfCancelling? = SelfCancelling(deinits: deinits)
            owner!.work = WorkItem("adv-self-cancel", on: queue, class: .unique("work:adv-self-cancel"),
                                   container: owner!) { _ in runs.increment() }
            XCTAssertTrue(owner!.work!.queue())
            owner = nil   // the queued item's pin is the last reference
            let deadline = Date().addingTimeInterval(10)
            while deinits.value <= round && Date() < deadline { usleep(500) }
        }
        XCTAssertEqual(runs.value, 20)
        XCTAssertEqual(deinits.value, 20, "a container whose deinit cancels its item was never freed (or the worker hung)")
        expectSilent()
    }

    /// The callback re-queues its own item, flushes and cancels it from the worker itself:
    /// neither waits for itself (each is reported as recursive locking, as the kernel's lockdep
    /// reports `flush_work` from the work itself), and the container stays pinned across the
    /// re-queued runs.
    func testCallbackRequeuesFlushesAndCancelsItself() {
        let queue = WorkQueue("adv-requeue", threads: 2)
        defer { queue.shutdown() }
        final class Chain: @unchecked Sendable {
            let remaining = Counter()
            let deinits: Counter
            var work: WorkItem?
            init(deinits: Counter) { self.deinits = deinits }
            deinit { deinits.increment() }
        }
        let deinits = Counter()
        let finished = DispatchSemaphore(value: 0)
        var chain: Chain? = Chain(deinits: deinits)
        chain!.work = WorkItem("adv-requeue", on: queue, class: .unique("work:adv-requeue"), container: chain!) { c in
            c.remaining.increment()
            let work = c.work!
            XCTAssertFalse(work.flush(), "flush from the item's own run returns at once")
            if c.remaining.value < 10 {
                XCTAssertTrue(work.queue(), "re-queue while running")
                XCTAssertTrue(work.cancelSync(), "cancel of the re-queued run, from the running one")
                XCTAssertTrue(work.queue(), "re-queue again")
            } else {
                finished.signal()
            }
        }
        XCTAssertTrue(chain!.work!.queue())
        chain = nil   // only the pins hold it from here
        XCTAssertEqual(finished.wait(timeout: .now() + 10), .success)
        let deadline = Date().addingTimeInterval(10)
        while deinits.value == 0 && Date() < deadline { usleep(500) }
        XCTAssertEqual(deinits.value, 1, "the pin chain across re-queued runs leaked its container")
        // (Reported only with checks compiled in; the runs above are checked in every build.)
        if Lockdep.checksCompiledIn {
            XCTAssertFalse(collector.kinds.isEmpty, "flush and cancel from the item's own run went unreported")
        }
        XCTAssertTrue(collector.kinds.allSatisfy { $0 == .recursiveLocking }, "\(collector.kinds)")
    }
}
