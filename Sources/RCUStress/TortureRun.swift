import RCU
import Synchronization

/// rcutorture's method on one flavor.
///
/// A writer thread takes a free element, publishes it and ages every retired
/// element by one after each grace period; an element that reaches the pipe
/// length is freed (``TortureElement/live`` false) and returns to the pool.
/// Readers, in read sections, record the age of the element they hold at the
/// end of the section ("Reader Pipe"): with working RCU no grace period can
/// end while they hold it, so it is at most 1 (it can be retired once, while
/// the reader holds it, and aged once by a grace period that began earlier).
/// A count past age 1, or a freed element ("mberror"), means a grace period
/// ended under a reader. Now and then a reader lingers in its section, as
/// rcutorture's do, to widen the window.
enum TortureRun<Flavor: RCUFlavor> {
    /// Elements in the pool (rcutorture: 10 * pipe length).
    static var poolSize: Int { 10 * TortureElement.pipeLength }

    /// The published pointer, shared by the threads.
    final class Shared: Sendable {
        let pointer: RCUPointer<TortureElement, Flavor>
        init(_ first: TortureElement) { pointer = RCUPointer(first) }
    }

    /// Runs the torture test for `seconds` with `readers` reader threads.
    ///
    /// - Parameter brokenWriter: Age and free elements without waiting for a grace
    ///   period: a deliberately broken RCU that the readers must catch.
    static func run(seconds: Double, readers: Int, brokenWriter: Bool) -> TortureResult {
        let pool = (0..<poolSize).map { _ in TortureElement() }
        pool[0].live.store(true, ordering: .releasing)
        let shared = Shared(pool[0])
        let control = StressControl(threads: readers + 1)
        let results = TortureCollector()

        var threads = (0..<readers).map { index in
            StressThread {
                results.add(reader: read(shared, control, counter: control.counters[index]))
            }
        }
        threads.append(StressThread {
            results.add(writer: write(shared, control, pool: pool, brokenWriter: brokenWriter))
        })
        var monitor = StressMonitor(unit: "reads", backlog: { Flavor.pendingCallbacks })
        control.go.store(true, ordering: .releasing)
        let elapsed = monitor.wait(seconds: seconds, counters: Array(control.counters.prefix(readers)))
        control.stop.store(true, ordering: .releasing)
        threads.forEach { $0.join() }
        monitor.sample()
        shared.pointer.replace(with: nil)
        Flavor.barrier()

        var total = results.total(flavor: Flavor.name)
        total.readers = readers
        total.seconds = (elapsed * 1000).rounded() / 1000
        total.brokenWriter = brokenWriter
        total.backlogPeak = monitor.backlogPeak
        total.residentPeak = max(monitor.residentPeak, ProcessMemory.peakResidentBytes)
        return total
    }

    /// The writer (rcutorture's `rcu_torture_writer`): publish a fresh element,
    /// then a grace period ages every retired one.
    static func write(
        _ shared: Shared, _ control: StressControl, pool: [TortureElement], brokenWriter: Bool
    ) -> TortureResult {
        var result = TortureResult(flavor: Flavor.name)
        var free = Array(pool.dropFirst())
        var retired: [TortureElement] = []
        control.waitForGo()
        while !control.shouldStop {
            if let fresh = free.popLast() {
                fresh.age.store(0, ordering: .relaxed)
                fresh.live.store(true, ordering: .relaxed)
                if let old = shared.pointer.exchange(fresh) { retired.append(old) }
            }
            // With every element still aging, only a grace period can free one.
            ageRetired(&retired, into: &free, circulation: &result.freeBlockCirculation, brokenWriter: brokenWriter)
            result.gracePeriods += 1
        }
        return result
    }

    /// After a grace period every retired element is one older; those that
    /// reach the pipe length are freed and return to the pool.
    static func ageRetired(
        _ retired: inout [TortureElement], into free: inout [TortureElement], circulation: inout [Int],
        brokenWriter: Bool
    ) {
        if !brokenWriter { Flavor.synchronize() }
        retired.removeAll { element in
            let age = element.age.wrappingAdd(1, ordering: .relaxed).newValue
            circulation[min(age, TortureElement.pipeLength)] += 1
            guard age >= TortureElement.pipeLength else { return false }
            element.live.store(false, ordering: .relaxed)
            free.append(element)
            return true
        }
    }

    /// A reader (rcutorture's `rcu_torture_reader`).
    static func read(_ shared: Shared, _ control: StressControl, counter: PaddedCounter) -> TortureResult {
        var result = TortureResult(flavor: Flavor.name)
        var reads = 0
        Flavor.withReader { reader in
            control.waitForGo()
            while !control.shouldStop {
                reads &+= 1
                let lingers = reads % 1024 == 0
                reader.read { section in
                    shared.pointer.withValue(in: section) { element in
                        if !element.live.load(ordering: .relaxed) { result.mbErrors += 1 }
                        if lingers {
                            for _ in 0..<200 { _ = element.age.load(ordering: .relaxed) }
                        }
                        let age = min(element.age.load(ordering: .relaxed), TortureElement.pipeLength)
                        result.readerPipe[age] += 1
                        if !element.live.load(ordering: .relaxed) { result.mbErrors += 1 }
                    }
                }
                if reads & 63 == 0 {
                    if Flavor.self == RCUQSBR.self { RCUQSBR.quiescentState() }
                    counter.publish(reads)
                }
            }
        }
        result.reads = reads
        return result
    }
}

/// Collects the torture threads' counts.
final class TortureCollector: @unchecked Sendable {
    private let lock = StressLock()
    private var readers: [TortureResult] = []
    private var writer: TortureResult?

    func add(reader: TortureResult) { lock.withLock { readers.append(reader) } }
    func add(writer: TortureResult) { lock.withLock { self.writer = writer } }

    /// The writer's counts with every reader's merged in.
    func total(flavor: String) -> TortureResult {
        lock.withLock {
            var total = writer ?? TortureResult(flavor: flavor)
            for reader in readers { total.merge(reader: reader) }
            return total
        }
    }
}
