/// The counts of one `rcu-stress torture` run (rcutorture's statistics lines).
struct TortureResult: Sendable {
    var flavor: String
    var mode = TortureMode.kernel
    var callbackWorkers = TortureCallbackWorkers.global
    var readers = 0
    var updaters = 0
    var seconds = 0.0
    var brokenWriter = false
    var reads = 0
    /// Grace periods the element writer waited for (kernel mode), or updates (liburcu's `n_updates`).
    var gracePeriods = 0
    /// Dereferences of an element already freed (kernel) or being reinitialised (stress: `n_mberror`).
    var mbErrors = 0
    /// "Reader Pipe" (kernel) or `rcu_stress_count` (stress): how many reads saw an element
    /// of each age (the last bucket is "pipe length or more").
    var readerPipe = [Int](repeating: 0, count: TortureElement.pipeLength + 1)
    /// "Free-Block Circulation": how many elements reached each age on their way back to the free pool.
    var freeBlockCirculation = [Int](repeating: 0, count: TortureElement.pipeLength + 1)
    var backlogPeak = 0
    var residentPeak = 0
    /// Start, run and stop times.
    var timing = TortureTiming()
    /// Probe callbacks, one per updater, that never ran (after a barrier).
    var callbacksLost = 0
    /// Updaters that got a dedicated call_rcu worker (per-thread mode).
    var dedicatedWorkers = 0
    /// Callback-worker set-up or teardown failures.
    var workerErrors: [String] = []

    /// Reads that saw an element older than one grace period: proof that RCU is broken.
    var agesPastOne: Int { readerPipe.dropFirst(2).reduce(0, +) }

    /// Per-thread mode gave every updater its own worker (trivially true otherwise).
    var workersAsAsked: Bool { callbackWorkers != .perThread || dedicatedWorkers == updaters }

    /// Whether the run found no error.
    var passed: Bool {
        agesPastOne == 0 && mbErrors == 0 && callbacksLost == 0 && workerErrors.isEmpty && workersAsAsked
    }

    /// rcutorture's verdict word.
    var verdict: String { passed ? "SUCCESS" : "FAILURE" }

    /// liburcu's `ns/read`: reader time per read section (NaN without readers or reads).
    var nanosecondsPerRead: Double { Double(readers) * seconds * 1e9 / Double(reads) }

    /// liburcu's `ns/update`: updater time per grace period.
    var nanosecondsPerUpdate: Double { Double(updaters) * seconds * 1e9 / Double(gracePeriods) }

    /// Adds a reader thread's counts.
    mutating func merge(reader other: TortureResult) {
        reads += other.reads
        mbErrors += other.mbErrors
        for (age, count) in other.readerPipe.enumerated() { readerPipe[age] += count }
    }

    /// Adds an updater thread's counts.
    mutating func merge(updater other: TortureResult) {
        gracePeriods += other.gracePeriods
    }

    private var failureReasons: String {
        var reasons: [String] = []
        if agesPastOne > 0 { reasons.append("\(agesPastOne) reads saw an element aged past 1") }
        if mbErrors > 0 { reasons.append("\(mbErrors) saw a freed or reinitialised element") }
        if callbacksLost > 0 { reasons.append("\(callbacksLost) probe callbacks never ran") }
        if !workersAsAsked { reasons.append("\(dedicatedWorkers) of \(updaters) updaters got a dedicated worker") }
        reasons += workerErrors
        return reasons.joined(separator: ", ")
    }

    /// The human report, in rcutorture's words.
    var lines: [String] {
        let failed = passed ? "" : "!!! "
        var lines = [
            "rcu-stress torture: rcu_\(flavor) \(mode.rawValue) \(callbackWorkers.liburcuName), \(readers) readers, "
                + "\(updaters) updaters, \(seconds) s\(brokenWriter ? ", BROKEN WRITER (no grace periods)" : "")",
        ]
        switch mode {
        case .perf, .rperf, .uperf, .all:
            lines.append("n_reads: \(reads)  n_updates: \(gracePeriods)  nreaders: \(readers)  nupdaters: \(updaters) duration: \(seconds)")
            lines.append("ns/read: \(Self.perOperation(nanosecondsPerRead))  ns/update: \(Self.perOperation(nanosecondsPerUpdate))")
        case .stress:
            lines.append("n_reads: \(reads)  n_updates: \(gracePeriods)  n_mberror: \(mbErrors)")
            lines.append("\(failed)rcu_stress_count: \(readerPipe.map(String.init).joined(separator: " "))")
        case .kernel:
            lines.append("reads: \(reads)  grace periods: \(gracePeriods)  mberror: \(mbErrors)")
            lines.append("\(failed)Reader Pipe: \(readerPipe.map(String.init).joined(separator: " "))")
            lines.append("Free-Block Circulation: \(freeBlockCirculation.map(String.init).joined(separator: " "))")
        }
        lines.append(
            "backlog peak: \(backlogPeak)  peak RSS: \(residentPeak / 1024) KiB  start: \(Self.milliseconds(timing.start)) ms  "
                + "stop: \(Self.milliseconds(timing.stop)) ms  probe callbacks lost: \(callbacksLost)"
                + (callbackWorkers == .perThread ? "  dedicated workers: \(dedicatedWorkers)" : ""))
        lines.append("--- End of test: \(verdict)" + (passed ? "" : " (\(failureReasons))"))
        return lines
    }

    /// liburcu prints `nan` for a kind of operation the mode does not perform.
    private static func perOperation(_ nanoseconds: Double) -> String {
        nanoseconds.isFinite ? Columns.scientific(nanoseconds) : "nan"
    }

    private static func milliseconds(_ seconds: Double) -> String {
        "\((seconds * 10_000).rounded() / 10)"
    }

    /// The `--json` object.
    var jsonLine: String {
        var json = JSONLine()
        json.add("flavor", flavor)
        json.add("mode", mode.rawValue)
        json.add("callback_workers", callbackWorkers.rawValue)
        json.add("readers", readers)
        json.add("updaters", updaters)
        json.add("duration_s", seconds)
        json.add("broken_writer", brokenWriter)
        json.add("reads", reads)
        json.add("grace_periods", gracePeriods)
        json.add("ns_per_read", nanosecondsPerRead)
        json.add("ns_per_update", nanosecondsPerUpdate)
        json.add("reader_pipe", readerPipe)
        json.add("free_block_circulation", freeBlockCirculation)
        json.add("ages_past_one", agesPastOne)
        json.add("mberror", mbErrors)
        json.add("callbacks_lost", callbacksLost)
        json.add("dedicated_workers", dedicatedWorkers)
        json.add("worker_errors", workerErrors.count)
        json.add("backlog_peak", backlogPeak)
        json.add("rss_peak_bytes", residentPeak)
        json.add("start_s", timing.start)
        json.add("stop_s", timing.stop)
        json.add("verdict", verdict)
        return json.text
    }
}

extension TortureResult {
    /// Records what every mode's run reports besides its threads' counts: the run's shape,
    /// its timing, the monitor's peaks and the callback probes' findings.
    mutating func record(
        mode: TortureMode, workers: TortureCallbackWorkers, readers: Int, updaters: Int, timing: TortureTiming,
        monitor: StressMonitor, probes: TortureProbes
    ) {
        self.mode = mode
        callbackWorkers = workers
        self.readers = readers
        self.updaters = updaters
        seconds = (timing.run * 1000).rounded() / 1000
        self.timing = timing
        backlogPeak = monitor.backlogPeak
        residentPeak = max(monitor.residentPeak, ProcessMemory.peakResidentBytes)
        callbacksLost = probes.lost
        dedicatedWorkers = probes.dedicatedWorkers
        workerErrors = probes.workerErrors
    }
}
