import ArgumentParser
import Lockdep
import Synchronization

/// `rcu-stress lock-graph`: the cost of checking a new Lockdep dependency as the graph grows to
/// the kernel's limits (8191 classes, 32768 dependencies).
struct LockGraph: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lock-graph",
        abstract: "Per-dependency cost of Lockdep's graph checks as the graph grows to the kernel's limits.",
        discussion: """
            Builds two graphs of CheckedMutex classes on one thread. "chain": N classes, each \
            new class taken while holding the previous one, so each acquire adds one \
            dependency (c0 -> c1 -> ... -> cN-1). "random": N classes created one by one and D \
            dependencies between random pairs of the classes created so far, oriented by a \
            hidden random order so the graph stays acyclic (no reports). Every acquire that \
            adds a dependency is timed; the times are reported as p50/p99/max per graph-size \
            bucket (up to N/8, N/4, N/2 and N classes). The chain's build time covers creating \
            the classes and locks and every acquire. Classes are dynamic keys, freed between \
            the two graphs. Run it in a release build with checks on (swift build -c release \
            --traits LockdepInRelease); acceptance: the 8191-class chain in under 1 s. --json \
            prints one object per graph.
            """
    )

    @Option(help: "Classes in each graph (the kernel's MAX_LOCKDEP_KEYS is 8191 usable).")
    var classes = 8191

    @Option(help: "Dependencies in the random graph (the kernel's MAX_LOCKDEP_ENTRIES is 32768).")
    var dependencies = 32768

    @Option(help: "Seed of the random graph.")
    var seed: UInt64 = 1

    @OptionGroup var output: JSONOutputOption

    func validate() throws {
        let limits = LockdepLimits()
        guard classes >= 8, classes < limits.maxClasses else {
            throw ValidationError("--classes must be in 8...\(limits.maxClasses - 1), not \(classes).")
        }
        guard dependencies >= 1, dependencies <= limits.maxDependencies,
              dependencies <= classes * (classes - 1) / 2 else {
            throw ValidationError("--dependencies must be in 1...\(min(limits.maxDependencies, classes * (classes - 1) / 2)) for \(classes) classes, not \(dependencies).")
        }
    }

    /// One graph's measurements.
    struct Result {
        var graph: String
        var classes = 0
        var dependencies = 0
        var buildSeconds = 0.0
        var freeSeconds = 0.0
        var sizes: [Int] = []
        var bucketCounts: [Int] = []
        var p50: [Int] = []
        var p99: [Int] = []
        var max: [Int] = []
        var graphAfterFree = LockdepGraphSize(classes: 0, dependencies: 0, chains: 0)
    }

    func run() throws {
        let reports = ReportCounter()
        Lockdep.reportMode = .custom { _ in reports.add() }
        let sizes = [8, 4, 2, 1].map { (classes + $0 - 1) / $0 }
        var results = [chain(sizes: sizes), random(sizes: sizes)]
        for i in results.indices { results[i].sizes = sizes }
        let reportCount = reports.count
        if output.json {
            for r in results {
                var line = JSONLine()
                line.add("graph", r.graph)
                line.add("checks_compiled_in", Lockdep.checksCompiledIn)
                line.add("classes", r.classes)
                line.add("dependencies", r.dependencies)
                line.add("build_seconds", r.buildSeconds)
                line.add("free_seconds", r.freeSeconds)
                line.add("sizes", r.sizes)
                line.add("bucket_dependencies", r.bucketCounts)
                line.add("p50_ns", r.p50)
                line.add("p99_ns", r.p99)
                line.add("max_ns", r.max)
                line.add("classes_after_free", r.graphAfterFree.classes)
                line.add("dependencies_after_free", r.graphAfterFree.dependencies)
                line.add("reports", reportCount)
                print(line.text)
            }
        } else {
            print("checks_compiled_in: \(Lockdep.checksCompiledIn)   reports: \(reportCount)")
            print("time of each acquire that adds a dependency, by graph size (classes so far)\n")
            print("graph    up to classes   dependencies     p50 ns     p99 ns     max ns")
            for r in results {
                for k in r.sizes.indices {
                    print(Columns.left(r.graph, 9) + Columns.right(String(r.sizes[k]), 13)
                        + Columns.right(String(r.bucketCounts[k]), 15) + Columns.right(String(r.p50[k]), 11)
                        + Columns.right(String(r.p99[k]), 11) + Columns.right(String(r.max[k]), 11))
                }
            }
            print("")
            for r in results {
                print("\(r.graph): \(r.classes) classes, \(r.dependencies) dependencies built in "
                    + "\(ReadCostResult.fixed(r.buildSeconds, width: 0)) s; freed in "
                    + "\(ReadCostResult.fixed(r.freeSeconds, width: 0)) s (after: \(r.graphAfterFree))")
            }
        }
    }

    /// c0 -> c1 -> ... : each new class is taken while holding the previous one.
    func chain(sizes: [Int]) -> Result {
        var result = Result(graph: "chain")
        var times = Array(repeating: [Int](), count: sizes.count)
        var bucket = 0
        let start = MonotonicClock.nanoseconds()
        var locks: [CheckedMutex] = []
        locks.reserveCapacity(classes)
        for i in 0..<classes {
            let m = CheckedMutex(class: .dynamic("chain\(i)"))
            if let previous = locks.last {
                previous.lock()
                let t0 = MonotonicClock.nanoseconds()
                m.lock()
                let t1 = MonotonicClock.nanoseconds()
                m.unlock()
                previous.unlock()
                while i + 1 > sizes[bucket] { bucket += 1 }
                times[bucket].append(Int(t1 &- t0))
                result.dependencies += 1
            } else {
                m.lock(); m.unlock()
            }
            locks.append(m)
        }
        finish(&result, freeing: &locks, builtSince: start, times: times)
        return result
    }

    /// Random dependencies among the classes created so far, oriented by a hidden random order.
    func random(sizes: [Int]) -> Result {
        var result = Result(graph: "random")
        var rng = StressRandom(seed: seed)
        var rank = Array(0..<classes)
        for i in stride(from: classes - 1, to: 0, by: -1) { rank.swapAt(i, rng.index(below: i + 1)) }
        var times = Array(repeating: [Int](), count: sizes.count)
        var bucket = 0
        var present = Set<Int>()
        var locks: [CheckedMutex] = []
        locks.reserveCapacity(classes)
        var owed = 0
        let start = MonotonicClock.nanoseconds()
        for k in 0..<classes {
            let m = CheckedMutex(class: .dynamic("random\(k)"))
            m.lock(); m.unlock()
            locks.append(m)
            guard k > 0 else { continue }
            // This class's share of the dependencies, plus what earlier classes could not place.
            owed += dependencies * k / (classes - 1) - dependencies * (k - 1) / (classes - 1)
            while k + 1 > sizes[bucket] { bucket += 1 }
            var attempts = 0
            while owed > 0 && (attempts < 64 || k == classes - 1) {
                attempts += 1
                let x = rng.index(below: k + 1), y = rng.index(below: k + 1)
                guard x != y else { continue }
                let (a, b) = rank[x] < rank[y] ? (x, y) : (y, x)
                guard present.insert(a * classes + b).inserted else { continue }
                locks[a].lock()
                let t0 = MonotonicClock.nanoseconds()
                locks[b].lock()
                let t1 = MonotonicClock.nanoseconds()
                locks[b].unlock()
                locks[a].unlock()
                times[bucket].append(Int(t1 &- t0))
                result.dependencies += 1
                owed -= 1
            }
        }
        finish(&result, freeing: &locks, builtSince: start, times: times)
        return result
    }

    /// Records the build time, frees the graph's locks (timing that too), and summarises the
    /// per-acquire times.
    func finish(_ result: inout Result, freeing locks: inout [CheckedMutex], builtSince start: UInt64, times: [[Int]]) {
        result.buildSeconds = Double(MonotonicClock.nanoseconds() &- start) / 1e9
        result.classes = locks.count
        let freeStart = MonotonicClock.nanoseconds()
        locks.removeAll()
        result.freeSeconds = Double(MonotonicClock.nanoseconds() &- freeStart) / 1e9
        result.graphAfterFree = Lockdep.graphSize
        summarize(times, into: &result)
    }

    func summarize(_ times: [[Int]], into result: inout Result) {
        for bucket in times {
            let sorted = bucket.sorted()
            result.bucketCounts.append(sorted.count)
            func percentile(_ p: Double) -> Int {
                sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.down)))]
            }
            result.p50.append(percentile(0.50))
            result.p99.append(percentile(0.99))
            result.max.append(sorted.last ?? 0)
        }
    }
}

/// Counts reports delivered to the custom handler (there should be none).
final class ReportCounter: Sendable {
    private let value = Atomic<Int>(0)
    func add() { value.add(1, ordering: .relaxed) }
    var count: Int { value.load(ordering: .relaxed) }
}
