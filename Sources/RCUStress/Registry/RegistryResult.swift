import IOMMU

/// The numbers of one `rcu-stress registry` run: throughput, latency percentiles, memory,
/// and the correctness counters that must all be zero.
struct RegistryResult: Sendable {
    let configuration: RegistryRunConfiguration
    var seconds = 0.0
    /// Reader iterations (lookups and fault reports).
    var lookups = 0
    /// Fault reports made (a subset of ``lookups``).
    var reports = 0
    /// Quarantines the registry applied.
    var quarantined = 0
    var writerOperations = 0
    var latency = ReadLatency()
    var quarantineLatency = ReadLatency()
    var backlogPeak = 0
    var residentPeak = 0
    var residentSeries: [Int] = []
    var backlogSeries: [Int] = []
    var useAfterFree = 0
    var invariantViolations = 0
    var warnings = 0
    var lostReports = 0
    var lateReports = 0
    var writerErrors = 0
    /// Retires the library's backlog policy throttled during the run (flow control).
    var backlogWaits = 0
    /// Time spent throttled, summed over the throttled callers.
    var backlogWaitNanoseconds: UInt64 = 0
    /// The backlog high-water mark the run used (`--backlog-limit`, or the flavor's policy).
    var backlogHighWaterMark = 0
    var lockdepReports = 0
    /// The first reports behind non-zero counters, for the failure message.
    var diagnostics: [String] = []
    /// The cost of the clock reads included in each timed lookup.
    var timerOverheadNanoseconds: UInt64 = 0

    var lookupsPerSecond: Double { seconds > 0 ? Double(lookups) / seconds : 0 }
    var writerOpsPerSecond: Double { seconds > 0 ? Double(writerOperations) / seconds : 0 }

    /// The sum of the correctness counters.
    var failures: Int {
        useAfterFree + invariantViolations + warnings + lostReports + lateReports + writerErrors + lockdepReports
    }

    /// Whether every correctness counter is zero.
    var passed: Bool { failures == 0 }

    /// The design name used in the JSON and the table (`rcu`, `devmutex`, `driver-only`, `rwlock`, `mutex`).
    var design: String { configuration.design.rawValue }

    /// The `--json` object, in BENCHMARKS.md's field order, then extra fields.
    var jsonLine: String {
        var json = JSONLine()
        json.add("design", design)
        json.add("flavor", configuration.flavor.rawValue)
        json.add("readers", configuration.readers)
        json.add("writers", configuration.writers)
        json.add("lookups_per_s", lookupsPerSecond)
        json.add("writer_ops_per_s", writerOpsPerSecond)
        json.add("lookup_p50_ns", latency.nanoseconds(atPercentile: 50))
        json.add("lookup_p99_ns", latency.nanoseconds(atPercentile: 99))
        json.add("lookup_p999_ns", latency.nanoseconds(atPercentile: 99.9))
        json.add("report_to_quarantine_p99_ns", quarantineLatency.nanoseconds(atPercentile: 99))
        json.add("backlog_peak", backlogPeak)
        json.add("rss_peak_bytes", residentPeak)
        json.add("uaf", useAfterFree)
        json.add("invariant_violations", invariantViolations)
        json.add("lost_reports", lostReports)
        json.add("lockdep_reports", lockdepReports)
        // Extra fields.
        json.add("groups", configuration.groups)
        json.add("devices_per_group", configuration.devicesPerGroup)
        json.add("duration_s", seconds)
        json.add("lookups", lookups)
        json.add("reports", reports)
        json.add("quarantined", quarantined)
        json.add("writer_ops", writerOperations)
        json.add("lookup_samples", latency.samples)
        json.add("timer_overhead_ns", timerOverheadNanoseconds)
        json.add("report_to_quarantine_p50_ns", quarantineLatency.nanoseconds(atPercentile: 50))
        json.add("late_reports", lateReports)
        json.add("warnings", warnings)
        json.add("writer_errors", writerErrors)
        json.add("backlog_waits", backlogWaits)
        json.add("backlog_wait_ms", Double(backlogWaitNanoseconds) / 1e6)
        json.add("lockdep_checks", RegistryCommand.checksCompiledIn)
        json.add("rss_series_bytes", residentSeries)
        json.add("backlog_series", backlogSeries)
        json.add("passed", passed)
        return json.text
    }

    /// The human report of a single design.
    var lines: [String] {
        let c = configuration
        var lines = [
            "rcu-stress registry: design \(design), rcu_\(c.flavor.rawValue), \(c.readers) readers, \(c.writers) writers, "
                + "\(c.groups) groups x \(c.devicesPerGroup) devices, \(Self.format(seconds)) s, "
                + "lockdep \(RegistryCommand.checksCompiledIn ? "on" : "off")",
            "lookups/s \(Columns.scientific(lookupsPerSecond))  writer ops/s \(Columns.scientific(writerOpsPerSecond))"
                + "  (\(lookups) lookups, \(reports) reports, \(quarantined) quarantined, \(writerOperations) writer ops)",
            "lookup latency ns (1 in \(c.sampleEvery) timed, clock ~\(timerOverheadNanoseconds) ns included): "
                + "p50 \(Self.ns(latency, 50))  p99 \(Self.ns(latency, 99))  p99.9 \(Self.ns(latency, 99.9))",
            "report-to-quarantine ns: p50 \(Self.ns(quarantineLatency, 50))  p99 \(Self.ns(quarantineLatency, 99))",
            "call_rcu backlog peak \(backlogPeak)  series \(backlogSeries)  retires throttled by the backlog policy \(backlogWaits), "
                + "\(backlogWaitNanoseconds / 1_000_000) ms",
            "RSS peak \(residentPeak / 1024) KiB  series KiB \(residentSeries.map { $0 / 1024 })",
            "use-after-free \(useAfterFree)  invariant violations \(invariantViolations)  WARNs \(warnings)  "
                + "lost reports \(lostReports)  late reports \(lateReports)  writer errors \(writerErrors)  "
                + "lockdep reports \(lockdepReports)",
            passed ? "--- PASS" : "--- FAIL: correctness counters are not all zero",
        ]
        lines += diagnostics
        return lines
    }

    /// Adds another round of the same design (`--rounds`): counts and times add up, peaks
    /// take the larger, latency histograms merge and the series continue.
    mutating func absorb(_ round: RegistryResult) {
        seconds += round.seconds
        lookups += round.lookups
        reports += round.reports
        quarantined += round.quarantined
        writerOperations += round.writerOperations
        latency.merge(round.latency)
        quarantineLatency.merge(round.quarantineLatency)
        backlogPeak = max(backlogPeak, round.backlogPeak)
        residentPeak = max(residentPeak, round.residentPeak)
        residentSeries += round.residentSeries
        backlogSeries += round.backlogSeries
        useAfterFree += round.useAfterFree
        invariantViolations += round.invariantViolations
        warnings += round.warnings
        lostReports += round.lostReports
        lateReports += round.lateReports
        writerErrors += round.writerErrors
        backlogWaits += round.backlogWaits
        backlogWaitNanoseconds += round.backlogWaitNanoseconds
        lockdepReports += round.lockdepReports
        if diagnostics.count < 6 { diagnostics += round.diagnostics.prefix(6 - diagnostics.count) }
    }

    static func ns(_ latency: ReadLatency, _ percentile: Double) -> String {
        latency.nanoseconds(atPercentile: percentile).map(String.init) ?? "-"
    }

    static func format(_ value: Double) -> String {
        "\((value * 100).rounded() / 100)"
    }
}
