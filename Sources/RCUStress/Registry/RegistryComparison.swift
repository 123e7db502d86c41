import IOMMU
import RCU

/// The table of `rcu-stress registry --design all` (the default run): one row per design,
/// its ratios against the rwlock and mutex baselines measured in the same process, the
/// BENCHMARKS.md targets with their verdicts, and any failure's diagnostics.
struct RegistryComparison {
    let results: [RegistryResult]

    private func result(_ design: RegistryDesignChoice) -> RegistryResult? {
        results.first { $0.configuration.design == design }
    }

    private static func ratio(_ a: Double, _ b: Double?) -> String {
        guard let b, b > 0 else { return "-" }
        let r = a / b
        return r >= 10 ? "\(Int(r.rounded()))x" : "\((r * 100).rounded() / 100)x"
    }

    var lines: [String] {
        let rwlock = result(.rwlock)
        let mutex = result(.mutex)
        let header = [
            Columns.left("design", 12), Columns.right("lookups/s", 10), Columns.right("vs rwlock", 10),
            Columns.right("vs mutex", 9), Columns.right("writer/s", 9), Columns.right("w vs mutex", 11),
            Columns.right("p50 ns", 7), Columns.right("p99 ns", 7), Columns.right("p99.9", 7),
            Columns.right("q p99 us", 9), Columns.right("backlog", 8), Columns.right("RSS MiB", 8),
            "  uaf/inv/lost/late/lockdep",
        ].joined(separator: " ")
        var lines = [header, String(repeating: "-", count: header.count)]
        for r in results {
            let counters = [r.useAfterFree, r.invariantViolations + r.warnings, r.lostReports,
                            r.lateReports, r.lockdepReports].map(String.init).joined(separator: "/")
            let quarantine = r.quarantineLatency.nanoseconds(atPercentile: 99).map { "\($0 / 1000)" } ?? "-"
            lines.append([
                Columns.left(r.design, 12), Columns.right(Columns.scientific(r.lookupsPerSecond), 10),
                Columns.right(Self.ratio(r.lookupsPerSecond, rwlock?.lookupsPerSecond), 10),
                Columns.right(Self.ratio(r.lookupsPerSecond, mutex?.lookupsPerSecond), 9),
                Columns.right(Columns.scientific(r.writerOpsPerSecond), 9),
                Columns.right(Self.ratio(r.writerOpsPerSecond, mutex?.writerOpsPerSecond), 11),
                Columns.right(RegistryResult.ns(r.latency, 50), 7), Columns.right(RegistryResult.ns(r.latency, 99), 7),
                Columns.right(RegistryResult.ns(r.latency, 99.9), 7), Columns.right(quarantine, 9),
                Columns.right("\(r.backlogPeak)", 8), Columns.right("\(r.residentPeak / 1_048_576)", 8),
                "  " + counters + (r.passed ? "" : "  FAIL"),
            ].joined(separator: " "))
        }
        if let overhead = results.first?.timerOverheadNanoseconds {
            lines.append("(latencies: 1 lookup in \(results.first?.configuration.sampleEvery ?? 0) timed; each includes ~\(overhead) ns of clock reads)")
        }
        lines += targets(rwlock: rwlock, mutex: mutex)
        for r in results where !r.passed {
            lines.append("FAIL \(r.design):")
            lines += r.diagnostics.map { "  " + $0 }
        }
        lines.append(results.allSatisfy(\.passed) ? "--- PASS: every correctness counter is 0" : "--- FAIL")
        return lines
    }

    /// BENCHMARKS.md's registry targets (revised for two cores), as measured in this run. The
    /// readers-only target needs a run without writers (`--writers 0`, which adds the ceiling).
    private func targets(rwlock: RegistryResult?, mutex: RegistryResult?) -> [String] {
        guard let rcu = result(.rcu) else { return [] }
        var lines = ["targets (BENCHMARKS.md, revised for two cores; meaningful with 2 readers, 1 device per group):"]
        func line(_ name: String, _ value: String, _ met: Bool) {
            lines.append("  \(met ? "met   " : "MISSED") \(name): \(value)")
        }
        if rcu.configuration.writers > 0 {
            if let mutex, mutex.lookupsPerSecond > 0 {
                let r = rcu.lookupsPerSecond / mutex.lookupsPerSecond
                line("rcu lookups/s >= 5x mutex", Self.ratio(rcu.lookupsPerSecond, mutex.lookupsPerSecond), r >= 5)
            }
            if let rwlock, rwlock.lookupsPerSecond > 0 {
                let r = rcu.lookupsPerSecond / rwlock.lookupsPerSecond
                line("rcu lookups/s above rwlock (many-core literature: >= 10x; on two cores about 7x is the ceiling)",
                     Self.ratio(rcu.lookupsPerSecond, rwlock.lookupsPerSecond), r > 1)
            }
            if let mutex, mutex.writerOpsPerSecond > 0 {
                let r = rcu.writerOpsPerSecond / mutex.writerOpsPerSecond
                line("rcu writer ops/s >= 0.8x mutex", Self.ratio(rcu.writerOpsPerSecond, mutex.writerOpsPerSecond), r >= 0.8)
            }
            let mark = rcu.backlogHighWaterMark
            line("rcu backlog flat (peak within the policy's high-water mark)",
                 "peak \(rcu.backlogPeak), mark \(mark == .max ? "none" : "\(mark)")",
                 mark != .max && rcu.backlogPeak <= mark + 4096)
            let series = rcu.residentSeries
            if series.count >= 4 {
                let firstHalf = series.prefix(series.count / 2).max() ?? 0
                let secondHalf = series.suffix(series.count / 2).max() ?? 0
                line("rcu RSS flat (second half's peak <= 1.25x the first half's)",
                     "\(firstHalf / 1_048_576) -> \(secondHalf / 1_048_576) MiB",
                     Double(secondHalf) <= 1.25 * Double(firstHalf))
            }
            lines.append("  ------ readers-only rcu >= 0.9x the unsynchronized ceiling: run with --writers 0")
        } else if let ceiling = result(.unsynchronized), ceiling.lookupsPerSecond > 0 {
            let r = rcu.lookupsPerSecond / ceiling.lookupsPerSecond
            line("readers-only rcu lookups/s >= 0.9x unsynchronized (the ceiling)",
                 Self.ratio(rcu.lookupsPerSecond, ceiling.lookupsPerSecond), r >= 0.9)
            lines.append("  ------ the writer targets (5x mutex, above rwlock, writer ops, flat backlog and RSS): run with writers")
        }
        lines.append("  ------ Lockdep on >= 0.7x off: compare a LockdepInRelease build's run with this one")
        return lines
    }
}
