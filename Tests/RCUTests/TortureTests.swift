import Foundation
import RCU
import Synchronization
import XCTest

/// rcutorture's method on each flavor: a writer publishes fresh elements and
/// ages every retired one at each grace period; an element aged past the pipe
/// length goes back to the free pool (poisoned, then reused). Readers record
/// the age of the element they hold at the end of their section: an age past
/// 1, or a poisoned element, means a grace period ended under a reader.
final class TortureTests: XCTestCase {
    /// Seconds per flavor: short in CI, `RCU_TORTURE_SECONDS` (or `RCU_LONG_TESTS`) for longer runs.
    private var seconds: Double {
        if let value = ProcessInfo.processInfo.environment["RCU_TORTURE_SECONDS"].flatMap(Double.init) { return value }
        return longTests ? 60 : 0.75
    }

    func testTortureMemb() { assertClean(Torture<RCUMemb>.run(seconds: seconds)) }
    func testTortureQSBR() { assertClean(Torture<RCUQSBR>.run(seconds: seconds)) }
    func testTortureBulletproof() { assertClean(Torture<RCUBulletproof>.run(seconds: seconds)) }
    func testTortureMemoryBarrier() { assertClean(Torture<RCUMemoryBarrier>.run(seconds: seconds)) }

    /// The same harness with a writer that does not wait for grace periods must fail:
    /// proof that the checks above can fire.
    func testBrokenWriterIsCaught() {
        let result = Torture<RCUMemb>.run(seconds: 5, brokenWriter: true, stopOnFailure: true)
        XCTAssertTrue(result.agesPastOne > 0 || result.mbErrors > 0, "broken writer went unnoticed: \(result)")
    }

    private func assertClean(_ result: TortureResult, file: StaticString = #filePath, line: UInt = #line) {
        print(result)
        XCTAssertGreaterThan(result.reads, 0, file: file, line: line)
        XCTAssertGreaterThan(result.gracePeriods, 0, file: file, line: line)
        XCTAssertEqual(result.agesPastOne, 0, "reader saw an element age past 1: \(result)", file: file, line: line)
        XCTAssertEqual(result.mbErrors, 0, "reader saw a freed element: \(result)", file: file, line: line)
    }
}

struct TortureResult: CustomStringConvertible {
    let flavor: String
    var reads = 0
    var gracePeriods = 0
    var mbErrors = 0
    var histogram = [Int](repeating: 0, count: TortureElement.pipeLength + 1)
    var agesPastOne: Int { histogram.dropFirst(2).reduce(0, +) }

    var description: String {
        "rcu_\(flavor) torture: \(reads) reads, \(gracePeriods) grace periods, "
            + "Reader Pipe: \(histogram.map(String.init).joined(separator: " ")), mberror \(mbErrors)"
    }
}

/// One torture element: its age in grace periods, and a poison flag standing
/// in for freed memory (ARC keeps the storage, so "free" is explicit and observable).
final class TortureElement: Sendable {
    static let pipeLength = 10
    let age = Atomic<Int>(0)
    let live = Atomic<Bool>(false)
}

enum Torture<F: RCUFlavor> {
    static func run(seconds: Double, readers: Int = 2, brokenWriter: Bool = false, stopOnFailure: Bool = false) -> TortureResult {
        let pool = (0..<64).map { _ in TortureElement() }
        let first = pool[0]
        first.live.store(true, ordering: .releasing)
        let current = SharedPointer<TortureElement, F>(first)
        let stop = Atomic<Bool>(false)
        let results = Locked<[TortureResult]>([])

        let readerThreads = (0..<readers).map { index in
            startThread(named: "torture-r\(index)") {
                let result = read(current, until: stop, stopOnFailure: stopOnFailure)
                results.withLock { $0.append(result) }
            }
        }
        var writer = TortureResult(flavor: F.name)
        let deadline = Date().addingTimeInterval(seconds)
        var free = Array(pool.dropFirst())
        var retired: [TortureElement] = []
        while Date() < deadline && !stop.load(ordering: .relaxed) {
            guard let fresh = free.popLast() else {
                // Every element is still aging: let a grace period pass.
                ageRetired(&retired, into: &free, broken: brokenWriter)
                writer.gracePeriods += 1
                continue
            }
            fresh.age.store(0, ordering: .relaxed)
            fresh.live.store(true, ordering: .relaxed)
            if let old = current.pointer.exchange(fresh) { retired.append(old) }
            ageRetired(&retired, into: &free, broken: brokenWriter)
            writer.gracePeriods += 1
        }
        stop.store(true, ordering: .releasing)
        readerThreads.forEach { $0.wait() }
        current.pointer.replace(with: nil)
        F.barrier()

        for result in results.withLock({ $0 }) {
            writer.reads += result.reads
            writer.mbErrors += result.mbErrors
            for (age, count) in result.histogram.enumerated() { writer.histogram[age] += count }
        }
        return writer
    }

    /// After a grace period every retired element is one older; the oldest are poisoned and freed.
    private static func ageRetired(_ retired: inout [TortureElement], into free: inout [TortureElement], broken: Bool) {
        if !broken { F.synchronize() }
        retired.removeAll { element in
            let age = element.age.wrappingAdd(1, ordering: .relaxed).newValue
            guard age >= TortureElement.pipeLength else { return false }
            element.live.store(false, ordering: .relaxed)
            free.append(element)
            return true
        }
    }

    private static func read(_ current: SharedPointer<TortureElement, F>, until stop: borrowing Atomic<Bool>, stopOnFailure: Bool) -> TortureResult {
        var result = TortureResult(flavor: F.name)
        let reader = RCUReader<F>()
        var iteration = 0
        while !stop.load(ordering: .relaxed) {
            iteration &+= 1
            reader.read { section in
                current.pointer.withValue(in: section) { element in
                    if !element.live.load(ordering: .relaxed) { result.mbErrors += 1 }
                    // Now and then linger in the section, as rcutorture's readers do.
                    if iteration % 1024 == 0 { for _ in 0..<200 { _ = element.age.load(ordering: .relaxed) } }
                    let age = min(element.age.load(ordering: .relaxed), TortureElement.pipeLength)
                    result.histogram[age] += 1
                    if !element.live.load(ordering: .relaxed) { result.mbErrors += 1 }
                }
            }
            result.reads += 1
            if F.self == RCUQSBR.self && iteration % 64 == 0 { RCUQSBR.quiescentState() }
            if stopOnFailure && (result.agesPastOne > 0 || result.mbErrors > 0) { break }
        }
        return result
    }
}

/// An RCU pointer shared by the torture threads.
final class SharedPointer<Value: AnyObject & Sendable, F: RCUFlavor>: Sendable {
    let pointer: RCUPointer<Value, F>
    init(_ initial: Value) { pointer = RCUPointer(initial) }
}
