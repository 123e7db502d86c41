/// The counts of one `rcu-stress torture` run (rcutorture's statistics line).
struct TortureResult: Sendable {
    var flavor: String
    var readers = 0
    var seconds = 0.0
    var brokenWriter = false
    var reads = 0
    var gracePeriods = 0
    /// Dereferences of an element already freed.
    var mbErrors = 0
    /// "Reader Pipe": how many reads saw an element of each age (the last bucket is "pipe length or more").
    var readerPipe = [Int](repeating: 0, count: TortureElement.pipeLength + 1)
    /// "Free-Block Circulation": how many elements reached each age on their way back to the free pool.
    var freeBlockCirculation = [Int](repeating: 0, count: TortureElement.pipeLength + 1)
    var backlogPeak = 0
    var residentPeak = 0

    /// Reads that saw an element older than one grace period: proof that RCU is broken.
    var agesPastOne: Int { readerPipe.dropFirst(2).reduce(0, +) }

    /// Whether the run found no error (and did some work).
    var passed: Bool { agesPastOne == 0 && mbErrors == 0 }

    /// rcutorture's verdict word.
    var verdict: String { passed ? "SUCCESS" : "FAILURE" }

    /// Adds a reader thread's counts.
    mutating func merge(reader other: TortureResult) {
        reads += other.reads
        mbErrors += other.mbErrors
        for (age, count) in other.readerPipe.enumerated() { readerPipe[age] += count }
    }

    /// The human report, in rcutorture's words.
    var lines: [String] {
        let failed = passed ? "" : "!!! "
        return [
            "rcu-stress torture: rcu_\(flavor), \(readers) readers, \(seconds) s\(brokenWriter ? ", BROKEN WRITER (no grace periods)" : "")",
            "reads: \(reads)  grace periods: \(gracePeriods)  mberror: \(mbErrors)  backlog peak: \(backlogPeak)  peak RSS: \(residentPeak / 1024) KiB",
            "\(failed)Reader Pipe: \(readerPipe.map(String.init).joined(separator: " "))",
            "Free-Block Circulation: \(freeBlockCirculation.map(String.init).joined(separator: " "))",
            "--- End of test: \(verdict)"
                + (passed ? "" : " (\(agesPastOne) reads saw an element aged past 1, \(mbErrors) saw a freed element)"),
        ]
    }

    /// The `--json` object.
    var jsonLine: String {
        var json = JSONLine()
        json.add("flavor", flavor)
        json.add("readers", readers)
        json.add("duration_s", seconds)
        json.add("broken_writer", brokenWriter)
        json.add("reads", reads)
        json.add("grace_periods", gracePeriods)
        json.add("reader_pipe", readerPipe)
        json.add("free_block_circulation", freeBlockCirculation)
        json.add("ages_past_one", agesPastOne)
        json.add("mberror", mbErrors)
        json.add("backlog_peak", backlogPeak)
        json.add("rss_peak_bytes", residentPeak)
        json.add("verdict", verdict)
        return json.text
    }
}
