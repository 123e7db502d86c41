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
    /// How long a lingering reader stays in its section (unless the element ages to 2 first).
    static var lingerNanoseconds: UInt64 { 1_000_000 }
    /// How often a reader lingers, at most: about a tenth of its time.
    static var lingerInterval: UInt64 { 10_000_000 }

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
    static func run(
        seconds: Double, readers: Int, workers: TortureCallbackWorkers = .global, brokenWriter: Bool
    ) -> TortureResult {
        let pool = (0..<poolSize).map { _ in TortureElement() }
        pool[0].live.store(true, ordering: .releasing)
        let shared = Shared(pool[0])
        let counters = (0..<readers).map { _ in PaddedCounter() }
        let results = TortureCollector()
        let probes = TortureProbes()
        let setup = TortureWorkerSetup<Flavor>(workers: workers, probes: probes)

        var bodies: [@Sendable (TortureGate) -> Void] = counters.map { counter in
            { gate in results.add(reader: read(shared, gate, counter: counter)) }
        }
        bodies.append { gate in
            setup.updaterBegins()
            results.add(writer: write(shared, gate, pool: pool, brokenWriter: brokenWriter))
            setup.updaterEnds()
        }
        setup.beforeRun()
        var monitor = StressMonitor(unit: "reads", backlog: { Flavor.pendingCallbacks })
        let timing = TortureThreads.run(bodies, seconds: seconds, monitor: &monitor, counters: counters)
        monitor.sample()
        shared.pointer.replace(with: nil)
        Flavor.barrier()
        setup.afterRun()

        var total = results.total(flavor: Flavor.name)
        total.record(mode: .kernel, workers: workers, readers: readers, updaters: 1, timing: timing,
                     monitor: monitor, probes: probes)
        total.brokenWriter = brokenWriter
        return total
    }

    /// The writer (rcutorture's `rcu_torture_writer`): publish a fresh element,
    /// then a grace period ages every retired one.
    static func write(
        _ shared: Shared, _ gate: TortureGate, pool: [TortureElement], brokenWriter: Bool
    ) -> TortureResult {
        var result = TortureResult(flavor: Flavor.name)
        var free = Array(pool.dropFirst())
        var retired: [TortureElement] = []
        gate.arriveAndWait()
        while !gate.shouldStop {
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
    static func read(_ shared: Shared, _ gate: TortureGate, counter: PaddedCounter) -> TortureResult {
        var result = TortureResult(flavor: Flavor.name)
        var reads = 0
        var nextLinger: UInt64 = 0
        Flavor.withReader { reader in
            TortureQuiescence<Flavor>.offline { gate.arriveAndWait() }
            while !gate.shouldStop {
                reads &+= 1
                // Every 1024 reads, if lingerInterval has passed: a clock, not a count, so that
                // slow builds linger as often as fast ones and fast ones not more.
                var lingers = false
                if reads % 1024 == 0 {
                    let now = MonotonicClock.nanoseconds()
                    if now >= nextLinger {
                        lingers = true
                        nextLinger = now + lingerInterval
                    }
                }
                reader.read { section in
                    shared.pointer.withValue(in: section) { element in
                        if !element.live.load(ordering: .relaxed) { result.mbErrors += 1 }
                        if lingers {
                            // Long enough for two writer passes even where the writer is slow
                            // (a sanitizer build): a broken writer is caught there too.
                            let until = MonotonicClock.nanoseconds() + lingerNanoseconds
                            while element.age.load(ordering: .relaxed) < 2 && MonotonicClock.nanoseconds() < until {}
                        }
                        let age = min(element.age.load(ordering: .relaxed), TortureElement.pipeLength)
                        result.readerPipe[age] += 1
                        if !element.live.load(ordering: .relaxed) { result.mbErrors += 1 }
                    }
                }
                if reads & 63 == 0 {
                    TortureQuiescence<Flavor>.quiescentState()
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
    private let lock = BaselineMutex()
    private var readers: [TortureResult] = []
    private var writer: TortureResult?

    func add(reader: TortureResult) { lock.withLock { readers.append(reader) } }
    func add(writer: TortureResult) { lock.withLock { self.writer = writer } }
    func add(updater: TortureResult) {
        lock.withLock {
            var total = writer ?? TortureResult(flavor: updater.flavor)
            total.merge(updater: updater)
            writer = total
        }
    }

    /// The writer's counts with every reader's merged in.
    func total(flavor: String) -> TortureResult {
        lock.withLock {
            var total = writer ?? TortureResult(flavor: flavor)
            for reader in readers { total.merge(reader: reader) }
            return total
        }
    }
}
