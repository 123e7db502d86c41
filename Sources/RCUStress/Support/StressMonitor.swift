#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The main thread's part of a stress run: waits for the duration while it
/// samples the call_rcu backlog and resident memory, and prints a progress line
/// (elapsed / total, current throughput) when standard output is a terminal.
struct StressMonitor {
    /// How often the backlog and RSS are sampled.
    static let sampleInterval: UInt64 = 10_000_000
    /// How often the progress line is redrawn.
    static let progressInterval: UInt64 = 1_000_000_000

    /// The call_rcu backlog (`Flavor.pendingCallbacks`), or 0 for the lock baselines.
    let backlog: () -> Int
    /// What the progress line calls the counts: `reads` or `ops`.
    let unit: String
    /// Whether to draw the progress line: standard output is a terminal.
    let showsProgress = isatty(STDOUT_FILENO) != 0

    /// The largest backlog and RSS seen while waiting.
    private(set) var backlogPeak = 0
    private(set) var residentPeak = 0

    init(unit: String, backlog: @escaping () -> Int) {
        self.unit = unit
        self.backlog = backlog
    }

    /// Waits `seconds`, sampling, then returns the elapsed seconds.
    /// - Parameter counters: The threads' running counts, summed for the progress line.
    mutating func wait(seconds: Double, counters: [PaddedCounter]) -> Double {
        let start = MonotonicClock.nanoseconds()
        let end = start + UInt64(seconds * 1e9)
        var nextProgress = start + Self.progressInterval
        var lastCount = 0
        var lastTime = start
        while true {
            let now = MonotonicClock.nanoseconds()
            sample()
            if now >= end { break }
            if showsProgress && now >= nextProgress {
                let count = counters.reduce(0) { $0 + $1.running }
                let rate = Double(count - lastCount) / (Double(now - lastTime) / 1e9)
                drawProgress(elapsed: Double(now - start) / 1e9, total: seconds, rate: rate)
                lastCount = count
                lastTime = now
                nextProgress += Self.progressInterval
            }
            let pause = min(Self.sampleInterval, end - now)
            var request = timespec(tv_sec: Int(pause / 1_000_000_000), tv_nsec: Int(pause % 1_000_000_000))
            _ = nanosleep(&request, nil)
        }
        if showsProgress { clearProgress() }
        return Double(MonotonicClock.nanoseconds() - start) / 1e9
    }

    /// Sleeps through `seconds` without waking, as liburcu's benchmark `main` does
    /// (`sleep(duration)`), then returns the elapsed seconds: for runs with no call_rcu
    /// backlog to watch and no progress line, where ``wait(seconds:counters:)``'s samples
    /// (a read of /proc/self/status every 10 ms) would be work on the measured CPUs that
    /// liburcu's programs do not do. The peak RSS is still known afterwards (`VmHWM`).
    static func sleep(seconds: Double) -> Double {
        let start = MonotonicClock.nanoseconds()
        let end = start + UInt64(seconds * 1e9)
        while true {
            let now = MonotonicClock.nanoseconds()
            if now >= end { break }
            let pause = end - now
            var request = timespec(tv_sec: Int(pause / 1_000_000_000), tv_nsec: Int(pause % 1_000_000_000))
            _ = nanosleep(&request, nil)  // woken early by a signal: the loop sleeps the rest
        }
        return Double(MonotonicClock.nanoseconds() - start) / 1e9
    }

    /// Takes one sample of the backlog and RSS.
    mutating func sample() {
        backlogPeak = max(backlogPeak, backlog())
        residentPeak = max(residentPeak, ProcessMemory.residentBytes)
    }

    private func drawProgress(elapsed: Double, total: Double, rate: Double) {
        // A fractional duration as given (3.5, not 4); a whole one without ".0".
        let duration = total == total.rounded(.down) ? "\(Int(total))" : "\(total)"
        let line = "\r[\(Int(elapsed.rounded()))/\(duration) s] \(Columns.scientific(rate)) \(unit)/s, backlog \(backlogPeak)"
        TerminalOutput.write(line + "\u{1B}[K", to: STDOUT_FILENO)
    }

    private func clearProgress() {
        TerminalOutput.write("\r\u{1B}[K", to: STDOUT_FILENO)
    }
}
