#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import ArgumentParser
import RCU
import Synchronization

/// `rcu-stress retire-storm`: threads retire objects as fast as they can, under each backlog
/// policy in one process; peak RSS, reclamation counted exactly once, throughput.
struct RetireStorm: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retire-storm",
        abstract: "A retire storm under each backlog policy: peak RSS above baseline, objects reclaimed exactly once, throughput.",
        discussion: """
            --threads threads retire --objects objects in all (`Flavor.retire(_:)`, each object's \
            deinit marks its bit in a ledger), once per --policies entry, in that order: \
            standard (RCUBacklogPolicy.standard, what a user who sets nothing gets), expedited \
            (throttled callers reclaim inline), unbounded (liburcu's behaviour). After each run \
            a barrier; then the ledger must hold every object exactly once. Peak RSS is VmHWM \
            (reset before each run through /proc/self/clear_refs) minus the RSS before the run, \
            after malloc_trim. Throughput: objects retired per second, and objects retired and \
            reclaimed (barrier included) per second, with the ratio to the unbounded run. \
            --fast-path instead times single-thread retires under the high-water mark \
            (ns per retire, best and median of --rounds rounds of 50,000).
            """
    )

    enum Policy: String, CaseIterable, ExpressibleByArgument {
        case standard, expedited, unbounded

        var policy: RCUBacklogPolicy {
            switch self {
            case .standard: .standard
            case .expedited: .expedited
            case .unbounded: .unbounded
            }
        }
    }

    @Option(help: "The flavor: memb, qsbr, bp or mb.")
    var flavor: FlavorChoice = .memb

    @Option(help: "Objects retired per run, in all.")
    var objects = 10_000_000

    @Option(help: "Retiring threads.")
    var threads = 2

    @Option(parsing: .upToNextOption, help: "Policies to run, in order.")
    var policies: [Policy] = [.standard, .expedited, .unbounded]

    @Option(help: "Fail (exit status 1) when a bounded run's peak RSS above baseline exceeds this many MiB.")
    var rssLimitMib = 64

    @Flag(help: "Time single-thread retires under the high-water mark instead of a storm.")
    var fastPath = false

    @Option(help: "Rounds of the --fast-path loop.")
    var rounds = 20

    @OptionGroup var output: JSONOutputOption

    func validate() throws {
        try flavor.validate(accepting: FlavorChoice.oneFlavor)
        guard (1...1_000_000_000).contains(objects) else {
            throw ValidationError("--objects must be within 1...1000000000, not \(objects).")
        }
        guard (1...64).contains(threads) else { throw ValidationError("--threads must be within 1...64, not \(threads).") }
        guard !policies.isEmpty else { throw ValidationError("--policies needs at least one policy.") }
        guard (1...1_000).contains(rounds) else { throw ValidationError("--rounds must be within 1...1000, not \(rounds).") }
        guard rssLimitMib > 0 else { throw ValidationError("--rss-limit-mib must be positive, not \(rssLimitMib).") }
    }

    func run() throws {
        switch flavor.flavor {
        case .memb?: try run(RCUMemb.self)
        case .qsbr?: try run(RCUQSBR.self)
        case .bp?: try run(RCUBulletproof.self)
        case .mb?: try run(RCUMemoryBarrier.self)
        case nil: preconditionFailure("validate() accepts one flavor only")
        }
    }

    private func run<F: RCUFlavor>(_: F.Type) throws {
        if fastPath {
            let result = RetireFastPath<F>(rounds: rounds).run()
            print(output.json ? result.json(flavor: F.name) : result.row(flavor: F.name))
            return
        }
        if !output.json {
            print("flavor \(F.name): \(objects) objects from \(threads) thread(s) per run\n")
            print("policy       retire s   drained s   retires/s  reclaimed/s  vs unbounded  peak RSS+ MiB  backlog peak  oldest ms  throttled  reclaimed   dup")
        }
        var results: [RetireStormResult] = []
        for policy in policies {
            results.append(RetireStormRun<F>(policy: policy, objects: objects, threads: threads).run())
        }
        let unbounded = results.first { $0.policy == .unbounded }
        var failed: [String] = []
        for result in results {
            print(output.json ? result.json(flavor: F.name, against: unbounded) : result.row(against: unbounded))
            if result.reclaimed != objects || result.duplicates != 0 {
                failed.append("\(result.policy.rawValue): reclaimed \(result.reclaimed) of \(objects), \(result.duplicates) twice")
            }
            if result.policy != .unbounded && result.peakAboveBaselineBytes > rssLimitMib << 20 {
                failed.append("\(result.policy.rawValue): peak RSS \(result.peakAboveBaselineBytes >> 20) MiB above baseline > \(rssLimitMib) MiB")
            }
        }
        F.backlogPolicy = .standard
        if !failed.isEmpty {
            CurrentError.print("retire-storm FAILED: " + failed.joined(separator: "; "))
            throw ExitCode(1)
        }
    }
}

/// glibc's `malloc_trim` (malloc.h is not in the Glibc module): returns freed memory to the
/// kernel, so a run's baseline RSS does not carry the previous run's free lists.
@_silgen_name("malloc_trim")
func mallocTrim(_ pad: Int) -> Int32

/// Which objects have been reclaimed: one bit each, set by the object's deinit.
final class StormLedger: @unchecked Sendable {
    let words: UnsafeMutablePointer<Atomic<UInt64>>
    let count: Int
    let duplicates = Atomic<Int>(0)

    init(objects: Int) {
        count = (objects + 63) / 64
        words = .allocate(capacity: count)
        for index in 0..<count { (words + index).initialize(to: Atomic(0)) }
    }

    deinit {
        words.deinitialize(count: count)
        words.deallocate()
    }

    @inline(__always)
    func mark(_ id: Int) {
        let bit: UInt64 = 1 << UInt64(id & 63)
        if words[id >> 6].bitwiseOr(bit, ordering: .relaxed).oldValue & bit != 0 {
            duplicates.add(1, ordering: .relaxed)
        }
    }

    var marked: Int {
        (0..<count).reduce(0) { $0 + words[$1].load(ordering: .relaxed).nonzeroBitCount }
    }
}

/// The ledger of the run in progress: a global, so that objects carry no reference to count.
nonisolated(unsafe) var stormLedger: StormLedger?

/// The retired object: 24 bytes, a malloc chunk of 32; its deinit is the reclamation counted.
final class StormObject: Sendable {
    let id: Int
    init(id: Int) { self.id = id }
    deinit { stormLedger.unsafelyUnwrapped.mark(id) }
}

struct RetireStormResult {
    let policy: RetireStorm.Policy
    let objects: Int
    let threads: Int
    let retireSeconds: Double
    let drainedSeconds: Double
    let baselineBytes: Int
    let peakAboveBaselineBytes: Int
    let backlogPeak: Int
    let oldestPeak: Duration
    let telemetry: RCUBacklogTelemetry
    let reclaimed: Int
    let duplicates: Int

    var retiresPerSecond: Double { Double(objects) / retireSeconds }
    var reclaimedPerSecond: Double { Double(objects) / drainedSeconds }

    func ratio(to unbounded: RetireStormResult?) -> Double {
        guard let unbounded else { return .nan }
        return reclaimedPerSecond / unbounded.reclaimedPerSecond
    }

    func row(against unbounded: RetireStormResult?) -> String {
        Columns.left(policy.rawValue, 11) + Columns.right(String(format: "%.3f", retireSeconds), 10)
            + Columns.right(String(format: "%.3f", drainedSeconds), 12)
            + Columns.right(String(format: "%.3g", retiresPerSecond), 12)
            + Columns.right(String(format: "%.3g", reclaimedPerSecond), 13)
            + Columns.right(String(format: "%.2fx", ratio(to: unbounded)), 14)
            + Columns.right(String(format: "%.1f", Double(peakAboveBaselineBytes) / 1_048_576), 15)
            + Columns.right(String(backlogPeak), 14)
            + Columns.right(String(oldestPeak.components.seconds * 1000 + oldestPeak.components.attoseconds / 1_000_000_000_000_000), 11)
            + Columns.right(String(telemetry.throttledRetires), 11)
            + Columns.right(String(reclaimed), 11) + Columns.right(String(duplicates), 6)
    }

    func json(flavor: String, against unbounded: RetireStormResult?) -> String {
        var line = JSONLine()
        line.add("flavor", flavor)
        line.add("policy", policy.rawValue)
        line.add("objects", objects)
        line.add("threads", threads)
        line.add("retire_seconds", retireSeconds)
        line.add("drained_seconds", drainedSeconds)
        line.add("retires_per_second", retiresPerSecond)
        line.add("reclaimed_per_second", reclaimedPerSecond)
        line.add("throughput_vs_unbounded", ratio(to: unbounded))
        line.add("baseline_rss_bytes", baselineBytes)
        line.add("peak_rss_above_baseline_bytes", peakAboveBaselineBytes)
        line.add("backlog_peak", backlogPeak)
        line.add("oldest_pending_peak_ms", Double(oldestPeak.components.seconds) * 1000 + Double(oldestPeak.components.attoseconds) / 1e15)
        line.add("throttled_retires", telemetry.throttledRetires)
        line.add("throttled_seconds", Double(telemetry.throttledTime.components.seconds) + Double(telemetry.throttledTime.components.attoseconds) / 1e18)
        line.add("inline_reclamations", telemetry.inlineReclamations)
        line.add("abandoned_waits", telemetry.abandonedWaits)
        line.add("reclaimed", reclaimed)
        line.add("duplicates", duplicates)
        return line.text
    }
}

/// One storm under one policy.
struct RetireStormRun<F: RCUFlavor> {
    let policy: RetireStorm.Policy
    let objects: Int
    let threads: Int

    func run() -> RetireStormResult {
        F.barrier()
        _ = mallocTrim(0)
        let ledger = StormLedger(objects: objects)
        stormLedger = ledger
        F.backlogPolicy = policy.policy
        let before = F.backlog
        resetPeakResident()
        let baseline = ProcessMemory.residentBytes
        let sampler = BacklogSampler<F>()
        let go = Atomic<Bool>(false)
        let workers = (0..<threads).map { index in
            StressThread { [objects, threads] in
                while !go.load(ordering: .acquiring) { sched_yield() }
                var id = index
                while id < objects {
                    F.retire(StormObject(id: id))
                    id += threads
                }
            }
        }
        let start = MonotonicClock.nanoseconds()
        go.store(true, ordering: .releasing)
        workers.forEach { $0.join() }
        let retired = MonotonicClock.nanoseconds()
        F.barrier()
        let drained = MonotonicClock.nanoseconds()
        sampler.stop()
        let peak = ProcessMemory.peakResidentBytes
        let after = F.backlog
        var telemetry = after
        telemetry.throttledRetires = after.throttledRetires - before.throttledRetires
        telemetry.throttledTime = after.throttledTime - before.throttledTime
        telemetry.inlineReclamations = after.inlineReclamations - before.inlineReclamations
        telemetry.abandonedWaits = after.abandonedWaits - before.abandonedWaits
        let result = RetireStormResult(
            policy: policy, objects: objects, threads: threads,
            retireSeconds: Double(retired - start) / 1e9, drainedSeconds: Double(drained - start) / 1e9,
            baselineBytes: baseline, peakAboveBaselineBytes: max(peak - baseline, 0),
            backlogPeak: sampler.backlogPeak, oldestPeak: sampler.oldestPeak, telemetry: telemetry,
            reclaimed: ledger.marked, duplicates: ledger.duplicates.load(ordering: .relaxed))
        stormLedger = nil
        return result
    }

    /// Resets VmHWM to the current RSS (Linux 4.0+: "5" to /proc/self/clear_refs).
    private func resetPeakResident() {
        guard let file = fopen("/proc/self/clear_refs", "w") else { return }
        fputs("5", file)
        fclose(file)
    }
}

/// Samples the backlog and its oldest callback's age every millisecond on its own thread.
final class BacklogSampler<F: RCUFlavor>: @unchecked Sendable {
    private let running = Atomic<Bool>(true)
    private let peaks = Mutex<(backlog: Int, oldest: Duration)>((0, .zero))
    private var thread: StressThread?

    init() {
        thread = StressThread { [self] in
            while running.load(ordering: .relaxed) {
                let backlog = F.backlog
                peaks.withLock {
                    $0.backlog = max($0.backlog, backlog.pendingCallbacks)
                    $0.oldest = max($0.oldest, backlog.oldestPendingAge)
                }
                usleep(1_000)
            }
        }
    }

    func stop() {
        running.store(false, ordering: .relaxed)
        thread?.join()
    }

    var backlogPeak: Int { peaks.withLock { $0.backlog } }
    var oldestPeak: Duration { peaks.withLock { $0.oldest } }
}

/// The fast path's object: `StormObject` without the ledger (the same object as the
/// measurement of the code before the backlog policy).
final class FastPathObject: Sendable {
    let id: Int
    init(id: Int) { self.id = id }
}

/// Single-thread retires under the high-water mark: rounds of 50,000 (half the standard
/// mark), each followed by a barrier, so no retire is throttled; ns per retire.
struct RetireFastPath<F: RCUFlavor> {
    let rounds: Int
    static var batch: Int { 50_000 }

    struct Result {
        let best: Double
        let median: Double
        let throttled: Int

        func row(flavor: String) -> String {
            "\(flavor) retire fast path: best \(String(format: "%.2f", best)) ns, median \(String(format: "%.2f", median)) ns per retire (throttled: \(throttled))"
        }

        func json(flavor: String) -> String {
            var line = JSONLine()
            line.add("flavor", flavor)
            line.add("fast_path_best_ns", best)
            line.add("fast_path_median_ns", median)
            line.add("throttled_retires", throttled)
            return line.text
        }
    }

    func run() -> Result {
        let before = F.backlog.throttledRetires
        var perRetire: [Double] = []
        for _ in 0..<rounds {
            var pending = (0..<Self.batch).map { FastPathObject(id: $0) }
            let start = MonotonicClock.nanoseconds()
            // Written per flavor: a generic loop is merged across flavors into indirect calls.
            switch F.kind {
            case .memb: while let object = pending.popLast() { RCUMemb.retire(object) }
            case .qsbr: while let object = pending.popLast() { RCUQSBR.retire(object) }
            case .bulletproof: while let object = pending.popLast() { RCUBulletproof.retire(object) }
            case .memoryBarrier: while let object = pending.popLast() { RCUMemoryBarrier.retire(object) }
            }
            let end = MonotonicClock.nanoseconds()
            perRetire.append(Double(end - start) / Double(Self.batch))
            F.barrier()
        }
        perRetire.sort()
        return Result(best: perRetire[0], median: perRetire[perRetire.count / 2], throttled: F.backlog.throttledRetires - before)
    }
}
