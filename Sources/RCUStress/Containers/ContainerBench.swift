import ArgumentParser
import Foundation
import RCU
import Synchronization

/// `rcu-stress containers`: read throughput of the RCU containers against the
/// same data behind locks, with concurrent readers and a writer, in one process.
struct ContainerBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "containers",
        abstract: "RCU hash map and list read throughput against Dictionary/Array behind a Mutex and a rwlock.",
        discussion: """
            Hash map: --readers threads look up random keys among --keys Int keys while one \
            writer replaces random keys (pausing --writer-pause-us between updates), for \
            --duration seconds per variant: RCUHashMap<Int, Int, RCUMemb> (liburcu's lock-free table); \
            RCUDictionary<Int, Int, RCUMemb> (the Swift-native table); Dictionary behind \
            Synchronization.Mutex; Dictionary behind a pthread rwlock. List: the same threads \
            iterate a --list-length list summing its elements while the writer replaces one: \
            RCUList<Int, RCUMemb> against an Array behind a pthread rwlock. Reports total reader \
            operations per second and the ratio to the rwlock variant (and, for the maps, to the \
            ceiling). A last hash map row, a Dictionary read with no lock while the writer \
            updates nothing, is not a concurrent design: it is the ceiling, what a hash lookup \
            itself costs here. Every read checks an \
            invariant (a map key is always present with a value of its own; a list traversal \
            sees every element once); a violation fails the run (exit status 1). A run takes \
            7 x --rounds x --duration plus a barrier and the threads' start and stop per variant \
            (tens of milliseconds): the writer's pause (at most 1 s) ends at the stop. Last, \
            single-threaded: --single-thread-lookups lookups of present keys in \
            RCUDictionary<Int, Int, RCUMemb> (a read section each) and in a Dictionary, alternated \
            3 times per round, best pass kept: nanoseconds per lookup and their ratio.
            """
    )

    @Option(help: "Seconds per variant; fractions allowed.") var duration = 1.0
    @Option(help: "Reader threads.") var readers = 2
    @Option(help: "Keys in the hash map.") var keys = 10_000
    @Option(help: "Elements in the list.") var listLength = 100
    @Option(help: "Microseconds the writer sleeps between updates (0: none).") var writerPauseUs: UInt32 = 20
    @Option(help: "Rounds; the variants alternate round by round and each keeps its best.") var rounds = 3
    @Option(help: "Single-threaded lookups per pass in the RCUDictionary-against-Dictionary comparison (0: skip it).")
    var singleThreadLookups = 1_000_000
    @OptionGroup var output: JSONOutputOption
    /// Proves the list invariant can fail: the writer removes the element, then appends
    /// its replacement, two publications a reader can fall between.
    @Flag(help: .hidden) var breakList = false

    /// The longest writer pause accepted. The writer sleeps in steps of at most a
    /// millisecond and checks for the stop between them, so even this pause does not
    /// make a variant overrun its --duration.
    static let maximumWriterPause: UInt32 = 1_000_000

    /// The longest variant accepted.
    static let maximumDuration = 3600.0

    func validate() throws {
        try DurationBound.validate(duration, maximum: Self.maximumDuration)
        guard (1...UrcuConfiguration.maximumThreads).contains(readers) else {
            throw ValidationError("--readers must be between 1 and \(UrcuConfiguration.maximumThreads) (32 per CPU), not \(readers).")
        }
        guard writerPauseUs <= Self.maximumWriterPause else {
            throw ValidationError("--writer-pause-us must be at most \(Self.maximumWriterPause) (1 s), not \(writerPauseUs).")
        }
        guard (1...(1 << 24)).contains(keys) else { throw ValidationError("--keys must be between 1 and 16777216, not \(keys).") }
        guard (1...(1 << 20)).contains(listLength) else {
            throw ValidationError("--list-length must be between 1 and 1048576, not \(listLength).")
        }
        guard (1...100).contains(rounds) else { throw ValidationError("--rounds must be between 1 and 100, not \(rounds).") }
        guard (0...(1 << 26)).contains(singleThreadLookups) else {
            throw ValidationError("--single-thread-lookups must be between 0 and 67108864, not \(singleThreadLookups).")
        }
    }

    /// One variant's best round.
    struct Result {
        let container: String
        let variant: String
        var readsPerSecond = 0.0
        var writesPerSecond = 0.0
        var violations = 0
    }

    func run() throws {
        var maps = ["RCUHashMap<memb>", "RCUDictionary<memb>", "Dictionary+Mutex", "Dictionary+rwlock", "Dictionary, unlocked"]
            .map { Result(container: "hashmap", variant: $0) }
        var lists = ["RCUList<memb>", "Array+rwlock"].map { Result(container: "list", variant: $0) }
        let singleThread = singleThreadLookups > 0
            ? ContainerSingleThreadLookups(keyCount: keys, lookups: singleThreadLookups) : nil
        var singleThreadBest = ContainerSingleThreadLookups.Round()
        for _ in 0..<rounds {
            maps[0].keepBest(measure(RCUMapSubject(keys: keys)))
            maps[1].keepBest(measure(RCUDictionarySubject(keys: keys)))
            maps[2].keepBest(measure(MutexDictionary(keys: keys)))
            maps[3].keepBest(measure(RWLockedDictionary(keys: keys)))
            maps[4].keepBest(measure(UnsharedDictionary(keys: keys)))
            lists[0].keepBest(measure(RCUListSubject(length: listLength, replaceInTwoSteps: breakList)))
            lists[1].keepBest(measure(RWLockedArray(length: listLength)))
            if let round = singleThread?.measure(passes: 3) {
                singleThreadBest.dictionary = min(singleThreadBest.dictionary, round.dictionary)
                singleThreadBest.rcuDictionary = min(singleThreadBest.rcuDictionary, round.rcuDictionary)
            }
        }
        if output.json {
            for result in maps { print(jsonLine(result, baseline: maps[3], ceiling: maps[4])) }
            for result in lists { print(jsonLine(result, baseline: lists[1])) }
            if singleThread != nil { singleThreadJSONLines(singleThreadBest).forEach { print($0) } }
        } else {
            print("readers: \(readers), writer: 1 (pause \(writerPauseUs) us), \(duration) s per variant, best of \(rounds) rounds")
            print("hash map lookups/s (\(keys) Int keys; readers total; writer updates/s)")
            maps.forEach { print(Self.row($0, baseline: maps[3], ceiling: maps[4])) }
            print("list iterations/s (\(listLength) elements, summed; readers total; writer replacements/s)")
            lists.forEach { print(Self.row($0, baseline: lists[1])) }
            if singleThread != nil { singleThreadRows(singleThreadBest).forEach { print($0) } }
        }
        let violations = (maps + lists).reduce(0) { $0 + $1.violations }
        if violations > 0 {
            CurrentError.print("rcu-stress containers: FAIL: \(violations) reads broke their invariant")
            throw ExitCode.failure
        }
    }

    func jsonLine(_ result: Result, baseline: Result, ceiling: Result? = nil) -> String {
        var line = JSONLine()
        line.add("container", result.container)
        line.add("variant", result.variant)
        line.add("readers", readers)
        line.add("reads_per_s", result.readsPerSecond)
        line.add("writer_ops_per_s", result.writesPerSecond)
        line.add("vs_rwlock", result.readsPerSecond / baseline.readsPerSecond)
        if let ceiling { line.add("vs_ceiling", result.readsPerSecond / ceiling.readsPerSecond) }
        line.add("violations", result.violations)
        return line.text
    }

    /// The single-threaded comparison's report lines.
    func singleThreadRows(_ best: ContainerSingleThreadLookups.Round) -> [String] {
        [
            "single-threaded lookup ns (\(keys) Int keys, \(singleThreadLookups) lookups a pass, 1 thread, no writer; "
                + "best of \(rounds) x 3 alternated passes)",
            "  Dictionary           \(String(format: "%8.2f", best.dictionary)) ns",
            "  RCUDictionary<memb>  \(String(format: "%8.2f", best.rcuDictionary)) ns  "
                + "x\(String(format: "%.2f", best.rcuDictionary / best.dictionary)) vs Dictionary (a read section per lookup)",
        ]
    }

    func singleThreadJSONLines(_ best: ContainerSingleThreadLookups.Round) -> [String] {
        [("Dictionary", best.dictionary), ("RCUDictionary<memb>", best.rcuDictionary)].map { variant, nanoseconds in
            var line = JSONLine()
            line.add("container", "hashmap-single-thread")
            line.add("variant", variant)
            line.add("ns_per_lookup", nanoseconds)
            line.add("vs_dictionary", nanoseconds / best.dictionary)
            return line.text
        }
    }

    static func row(_ result: Result, baseline: Result, ceiling: Result? = nil) -> String {
        let padded = result.variant.padding(toLength: 20, withPad: " ", startingAt: 0)
        let ratio = String(format: "%.1f", result.readsPerSecond / baseline.readsPerSecond)
        let toCeiling = ceiling.map { String(format: "  x%.2f vs ceiling", result.readsPerSecond / $0.readsPerSecond) } ?? ""
        let bad = result.violations == 0 ? "" : "  \(result.violations) INVARIANT VIOLATIONS"
        return "  \(padded) \(String(format: "%14.0f", result.readsPerSecond))  writer "
            + "\(String(format: "%9.0f", result.writesPerSecond))  x\(ratio) vs rwlock\(toCeiling)\(bad)"
    }

    /// Runs the readers and the writer for `duration` on the harness's threads; returns
    /// operations per second and the reads that broke the subject's invariant.
    func measure(_ subject: some BenchSubject) -> Result {
        let keyCount = subject.keyCount
        let pause = writerPauseUs
        let control = StressControl(threads: readers + 1)
        let totals = ContainerTotals()
        var threads = (0..<readers).map { index in
            StressThread {
                var random = StressRandom(seed: UInt64(index + 1))
                let counter = control.counters[index]
                var count = 0
                var violations = 0
                control.waitForGo()
                while !control.shouldStop {
                    for _ in 0..<256 {
                        let key = random.index(below: keyCount)
                        if !subject.isConsistent(subject.read(key), key: key) { violations += 1 }
                    }
                    count += 256
                    counter.publish(count)
                }
                totals.reads.add(count, ordering: .relaxed)
                totals.violations.add(violations, ordering: .relaxed)
            }
        }
        threads.append(StressThread {
            var random = StressRandom(seed: 7)
            var count = 0
            control.waitForGo()
            while !control.shouldStop {
                count += 1
                subject.write(random.index(below: keyCount), generation: count)
                // The pause ends early at the stop: a variant lasts --duration, not --duration + a pause.
                var left = pause
                while left > 0 && !control.shouldStop {
                    let step = min(left, 1_000)
                    usleep(step)
                    left -= step
                }
            }
            totals.writes.add(count, ordering: .relaxed)
        })
        var monitor = StressMonitor(unit: "reads", backlog: { RCUMemb.pendingCallbacks })
        control.go.store(true, ordering: .releasing)
        let start = MonotonicClock.nanoseconds()
        _ = monitor.wait(seconds: duration, counters: Array(control.counters.prefix(readers)))
        control.stop.store(true, ordering: .releasing)
        threads.forEach { $0.join() }
        let seconds = Double(MonotonicClock.nanoseconds() &- start) / 1e9
        RCUMemb.barrier()
        var result = Result(container: "", variant: "")
        result.readsPerSecond = Double(totals.reads.load(ordering: .relaxed)) / seconds
        result.writesPerSecond = Double(totals.writes.load(ordering: .relaxed)) / seconds
        result.violations = totals.violations.load(ordering: .relaxed)
        return result
    }
}

extension ContainerBench.Result {
    /// Keeps the faster round's rates; violations add up over every round.
    mutating func keepBest(_ round: Self) {
        if round.readsPerSecond > readsPerSecond {
            readsPerSecond = round.readsPerSecond
            writesPerSecond = round.writesPerSecond
        }
        violations += round.violations
    }
}

/// The threads' totals, added once each when they end.
final class ContainerTotals: Sendable {
    let reads = Atomic<Int>(0)
    let writes = Atomic<Int>(0)
    let violations = Atomic<Int>(0)
}
