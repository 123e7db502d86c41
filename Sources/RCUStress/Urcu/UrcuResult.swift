/// The outcome of one `rcu-stress urcu` run.
struct UrcuResult {
    let config: UrcuConfiguration
    /// The measured run time (the threads ran from "go" to "stop").
    let elapsedSeconds: Double
    /// The readers' totals and merged latency samples.
    let reader: UrcuReaderResult
    let writes: Int
    /// The largest call_rcu backlog sampled (every 10 ms).
    let backlogPeak: Int
    /// Peak resident set size (VmHWM).
    let residentPeak: Int
    /// The cost of the clock reads included in every latency sample.
    let timerOverheadNanoseconds: UInt64

    /// Whether every correctness counter is zero.
    var passed: Bool { reader.poisoned == 0 }

    /// liburcu's line, field for field:
    /// `SUMMARY %-25s testdur %4lu nr_readers %3u rdur %6lu wdur %6lu nr_writers %3u wdelay %6lu nr_reads %12llu nr_writes %12llu nr_ops %12llu`.
    var summaryLine: String {
        let duration = config.duration.rounded() == config.duration ? String(Int(config.duration)) : String(config.duration)
        return "SUMMARY " + Columns.left(config.flavor.programName, 25)
            + " testdur " + Columns.right(duration, 4)
            + " nr_readers " + Columns.right(String(config.readers), 3)
            + " rdur " + Columns.right(String(config.readDuration), 6)
            + " wdur " + Columns.right(String(config.writeDuration), 6)
            + " nr_writers " + Columns.right(String(config.writers), 3)
            + " wdelay " + Columns.right(String(config.writerDelay), 6)
            + " nr_reads " + Columns.right(String(reader.reads), 12)
            + " nr_writes " + Columns.right(String(writes), 12)
            + " nr_ops " + Columns.right(String(reader.reads + writes), 12)
    }

    /// The human report below the SUMMARY line: rates, latency percentiles, backlog, RSS, verdict.
    var detailLines: [String] {
        func ns(_ value: UInt64?) -> String { value.map { "\($0) ns" } ?? "-" }
        let latency = reader.latency
        return [
            "reads/s \(Columns.scientific(Double(reader.reads) / elapsedSeconds))"
                + "  writes/s \(Columns.scientific(Double(writes) / elapsedSeconds))"
                + "  (\(Columns.scientific(elapsedSeconds)) s measured)",
            config.sampleEvery.map { sampleEvery in
                "read latency (1 in \(sampleEvery) reads, \(latency.samples) samples, includes ~\(timerOverheadNanoseconds) ns of clock):"
                    + " p50 \(ns(latency.nanoseconds(atPercentile: 50)))"
                    + " p99 \(ns(latency.nanoseconds(atPercentile: 99)))"
                    + " p99.9 \(ns(latency.nanoseconds(atPercentile: 99.9)))"
                    + " max \(ns(latency.maxNanoseconds))"
            } ?? "read latency not sampled: readers ran test_urcu's loop (--sample-every N times one read in N)",
            "call_rcu backlog peak \(backlogPeak)  peak RSS \(residentPeak / 1024) KiB",
            passed
                ? "PASS: no reader saw a poisoned value"
                : "FAIL: \(reader.poisoned) reads saw a poisoned value",
        ]
    }

    /// The `--json` object.
    var jsonLine: String {
        var json = JSONLine()
        json.add("prog", config.flavor.programName)
        json.add("flavor", config.flavor.name)
        json.add("testdur", config.duration)
        json.add("nr_readers", config.readers)
        json.add("rdur", config.readDuration)
        json.add("wdur", config.writeDuration)
        json.add("nr_writers", config.writers)
        json.add("wdelay", config.writerDelay)
        json.add("batch", config.batch ?? 0)
        json.add("nr_reads", reader.reads)
        json.add("nr_writes", writes)
        json.add("nr_ops", reader.reads + writes)
        json.add("elapsed_s", elapsedSeconds)
        json.add("reads_per_s", Double(reader.reads) / elapsedSeconds)
        json.add("writes_per_s", Double(writes) / elapsedSeconds)
        json.add("latency_sample_every", config.sampleEvery ?? 0)
        json.add("latency_samples", reader.latency.samples)
        json.add("timer_overhead_ns", timerOverheadNanoseconds)
        json.add("read_p50_ns", reader.latency.nanoseconds(atPercentile: 50))
        json.add("read_p99_ns", reader.latency.nanoseconds(atPercentile: 99))
        json.add("read_p999_ns", reader.latency.nanoseconds(atPercentile: 99.9))
        json.add("read_max_ns", reader.latency.maxNanoseconds)
        json.add("backlog_peak", backlogPeak)
        json.add("rss_peak_bytes", residentPeak)
        json.add("poisoned_reads", reader.poisoned)
        json.add("passed", passed)
        return json.text
    }
}
