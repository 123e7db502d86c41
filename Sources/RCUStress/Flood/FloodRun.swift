#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import RCU
import Synchronization

/// Objects, nodes and closures reclaimed in the flood under way: a global, so that what
/// is retired carries no reference to count (a shared retain would be the writers' hot spot).
let floodReclaimed = Atomic<Int>(0)

/// A retired object: 24 bytes, a malloc chunk of 32; its deinit is the reclamation counted.
final class FloodObject: Sendable {
    let id: Int
    init(id: Int) { self.id = id }
    deinit { floodReclaimed.add(1, ordering: .relaxed) }
}

/// The node the readers read: poisoned by its deinit, so a reader that finds it poisoned
/// inside a read section has seen a grace period end under it.
final class FloodNode: Sendable {
    private let value = Atomic<Int>(StressNode.live)

    @inline(__always)
    var isLive: Bool { value.load(ordering: .relaxed) == StressNode.live }

    deinit {
        value.store(StressNode.poison, ordering: .relaxed)
        floodReclaimed.add(1, ordering: .relaxed)
    }
}

/// One flavor's flood.
struct FloodRun<F: RCUFlavor> {
    let duration: Double
    let writers: Int
    let readers: Int
    let policy: Flood.Policy
    let rssLimitBytes: Int

    init(_ command: Flood) {
        duration = command.duration
        writers = command.writers
        readers = command.readers
        policy = command.policy
        rssLimitBytes = command.rssLimitMib << 20
    }

    /// What the threads share.
    final class Shared: Sendable {
        let pointer = RCUPointer<FloodNode, F>(FloodNode())
        let stop = Atomic<Bool>(false)
        let go = Atomic<Bool>(false)
        let retired = Atomic<Int>(0)
        let reads = Atomic<Int>(0)
        let badReads = Atomic<Int>(0)
    }

    func run() -> FloodResult {
        let started = MonotonicClock.nanoseconds()
        _ = F.barrier(untilQuiet: 64)
        _ = mallocTrim(0)
        F.backlogPolicy = policy.policy
        defer { F.backlogPolicy = .standard }
        floodReclaimed.store(0, ordering: .relaxed)
        let shared = Shared()
        let before = F.backlog
        ProcessMemory.resetPeakResident()
        let baseline = ProcessMemory.residentBytes
        let sampler = BacklogSampler<F>()
        let threads =
            (0..<readers).map { _ in StressThread { Self.read(shared) } }
            + (0..<writers).map { writer in StressThread { Self.write(shared, writer: writer) } }
        let floodStart = MonotonicClock.nanoseconds()
        shared.go.store(true, ordering: .releasing)
        var pause = timespec(tv_sec: Int(duration), tv_nsec: Int((duration - duration.rounded(.down)) * 1e9))
        _ = nanosleep(&pause, nil)
        shared.stop.store(true, ordering: .releasing)
        let reclaimedInFlood = floodReclaimed.load(ordering: .relaxed)
        let floodEnd = MonotonicClock.nanoseconds()
        threads.forEach { $0.join() }
        let joined = MonotonicClock.nanoseconds()
        shared.pointer.replace(with: nil)       // the last published node
        shared.retired.add(1, ordering: .relaxed)
        let quiet = F.barrier(untilQuiet: 64)
        let drained = MonotonicClock.nanoseconds()
        sampler.stop()
        let after = F.backlog
        return FloodResult(
            flavor: F.name, policy: policy.rawValue, writers: writers, readers: readers,
            floodSeconds: Double(floodEnd - floodStart) / 1e9, stopSeconds: Double(joined - floodEnd) / 1e9,
            drainSeconds: Double(drained - joined) / 1e9, totalSeconds: Double(drained - started) / 1e9,
            baselineBytes: baseline, peakAboveBaselineBytes: max(ProcessMemory.peakResidentBytes - baseline, 0),
            rssLimitBytes: rssLimitBytes, backlogPeak: sampler.backlogPeak, oldestPeak: sampler.oldestPeak,
            retired: shared.retired.load(ordering: .relaxed), reclaimedInFlood: reclaimedInFlood,
            reclaimed: floodReclaimed.load(ordering: .relaxed), quiet: quiet,
            reads: shared.reads.load(ordering: .relaxed), badReads: shared.badReads.load(ordering: .relaxed),
            throttledRetires: after.throttledRetires - before.throttledRetires,
            inlineReclamations: after.inlineReclamations - before.inlineReclamations,
            abandonedWaits: after.abandonedWaits - before.abandonedWaits)
    }

    /// A writer: retires as fast as it can until the stop flag (checked after every retire).
    private static func write(_ shared: Shared, writer: Int) {
        while !shared.go.load(ordering: .acquiring) { sched_yield() }
        var count = 0
        while !shared.stop.load(ordering: .relaxed) {
            count += 1
            if count & 15 == 0 {
                shared.pointer.replace(with: FloodNode())
            } else if count & 63 == 1 {
                F.retire { floodReclaimed.add(1, ordering: .relaxed) }
            } else {
                F.retire(FloodObject(id: count))
            }
        }
        shared.retired.add(count, ordering: .relaxed)
    }

    /// A reader: read sections over the published node until the stop flag.
    private static func read(_ shared: Shared) {
        let (reads, bad) = F.withReader { reader in
            while !shared.go.load(ordering: .acquiring) { sched_yield() }
            var reads = 0
            var bad = 0
            while !shared.stop.load(ordering: .relaxed) {
                bad += reader.read { section in shared.pointer.withValue(in: section) { $0.isLive ? 0 : 1 } ?? 0 }
                reads += 1
                if reads & 1023 == 0 { F.quiescentStateIfQSBR() }
            }
            return (reads, bad)
        }
        shared.reads.add(reads, ordering: .relaxed)
        shared.badReads.add(bad, ordering: .relaxed)
    }
}

extension ProcessMemory {
    /// Resets VmHWM to the current RSS (Linux 4.0+: "5" to /proc/self/clear_refs).
    static func resetPeakResident() {
        guard let file = fopen("/proc/self/clear_refs", "w") else { return }
        fputs("5", file)
        fclose(file)
    }
}

/// One flavor's flood figures.
struct FloodResult {
    let flavor: String
    let policy: String
    let writers: Int
    let readers: Int
    let floodSeconds: Double
    let stopSeconds: Double
    let drainSeconds: Double
    let totalSeconds: Double
    let baselineBytes: Int
    let peakAboveBaselineBytes: Int
    let rssLimitBytes: Int
    let backlogPeak: Int
    let oldestPeak: Duration
    let retired: Int
    let reclaimedInFlood: Int
    let reclaimed: Int
    let quiet: RCUQuietBarrierResult
    let reads: Int
    let badReads: Int
    let throttledRetires: Int
    let inlineReclamations: Int
    let abandonedWaits: Int

    var retiresPerSecond: Double { Double(retired) / floodSeconds }
    /// Objects reclaimed per second while the flood ran (not counting the drain after it).
    var reclaimsPerSecond: Double { Double(reclaimedInFlood) / floodSeconds }
    var oldestPeakMilliseconds: Double {
        Double(oldestPeak.components.seconds) * 1000 + Double(oldestPeak.components.attoseconds) / 1e15
    }

    var failures: [String] {
        var failures: [String] = []
        if peakAboveBaselineBytes > rssLimitBytes {
            failures.append("\(flavor): peak RSS \(peakAboveBaselineBytes >> 20) MiB above baseline > \(rssLimitBytes >> 20) MiB")
        }
        if retired != reclaimed {
            failures.append("\(flavor): retired \(retired), reclaimed \(reclaimed) (quiet: \(quiet.isQuiet) after \(quiet.rounds) barriers)")
        }
        if badReads != 0 { failures.append("\(flavor): \(badReads) reads saw a reclaimed node") }
        return failures
    }

    static let header = "flavor  flood s  stop s  drain s  peak RSS+ MiB  backlog peak  oldest ms    retired/s  reclaimed/s      retired    reclaimed  throttled   inline  bad  result"

    var row: String {
        Columns.left(flavor, 6) + Columns.right(String(format: "%.2f", floodSeconds), 9)
            + Columns.right(String(format: "%.2f", stopSeconds), 8) + Columns.right(String(format: "%.2f", drainSeconds), 9)
            + Columns.right(String(format: "%.1f", Double(peakAboveBaselineBytes) / 1_048_576), 15)
            + Columns.right(String(backlogPeak), 14) + Columns.right(String(format: "%.0f", oldestPeakMilliseconds), 11)
            + Columns.right(String(format: "%.3g", retiresPerSecond), 13) + Columns.right(String(format: "%.3g", reclaimsPerSecond), 13)
            + Columns.right(String(retired), 13) + Columns.right(String(reclaimed), 13)
            + Columns.right(String(throttledRetires), 11) + Columns.right(String(inlineReclamations), 9)
            + Columns.right(String(badReads), 5) + "  " + (failures.isEmpty ? "PASS" : "FAIL")
    }

    var json: String {
        var line = JSONLine()
        line.add("flavor", flavor)
        line.add("policy", policy)
        line.add("writers", writers)
        line.add("readers", readers)
        line.add("flood_seconds", floodSeconds)
        line.add("stop_seconds", stopSeconds)
        line.add("drain_seconds", drainSeconds)
        line.add("total_seconds", totalSeconds)
        line.add("baseline_rss_bytes", baselineBytes)
        line.add("peak_rss_above_baseline_bytes", peakAboveBaselineBytes)
        line.add("rss_limit_bytes", rssLimitBytes)
        line.add("backlog_peak", backlogPeak)
        line.add("oldest_pending_peak_ms", oldestPeakMilliseconds)
        line.add("retired", retired)
        line.add("reclaimed", reclaimed)
        line.add("reclaimed_during_flood", reclaimedInFlood)
        line.add("retires_per_second", retiresPerSecond)
        line.add("reclaims_per_second", reclaimsPerSecond)
        line.add("quiet", quiet.isQuiet)
        line.add("quiet_barrier_rounds", quiet.rounds)
        line.add("reads", reads)
        line.add("bad_reads", badReads)
        line.add("throttled_retires", throttledRetires)
        line.add("inline_reclamations", inlineReclamations)
        line.add("abandoned_waits", abandonedWaits)
        line.add("passed", failures.isEmpty)
        return line.text
    }
}
