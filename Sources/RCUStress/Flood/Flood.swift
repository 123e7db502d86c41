import ArgumentParser
import RCU

/// `rcu-stress flood`: the kernel rcutorture's forward-progress test (`fwd_progress`) on
/// the Swift API: writers flood call_rcu for the whole run while readers keep reading, per
/// flavor; memory must stay bounded and every object retired must be reclaimed.
struct Flood: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flood",
        abstract: "A callback flood per flavor (rcutorture's fwd_progress): peak RSS, peak backlog, reclaim rate, retired = reclaimed.",
        discussion: """
            For --duration seconds per flavor, --writers threads retire objects as fast as they \
            can (`retire(_:)`; every 16th an `RCUPointer.replace(with:)` of the pointer the \
            readers read, every 64th a closure) while --readers threads read that pointer in \
            read sections (qsbr readers announce a quiescent state every 1024 reads). The \
            flavor's backlog policy is --policy (standard: what a user who sets nothing gets). \
            After the flood, `barrier(untilQuiet:)`; then every object retired must have been \
            reclaimed (counted by their deinits), and no reader may have seen a reclaimed \
            object. Peak RSS is VmHWM (reset at the start through /proc/self/clear_refs) minus \
            the RSS before the flood, after malloc_trim. With --flavor all the flavors run in \
            one process, in order, and memory an earlier flavor's flood left in malloc's free \
            lists (which malloc_trim does not return) serves the next: a later flavor's peak \
            above its baseline can read lower than in a process of its own (5 s floods: mb \
            0.1 MiB after the other three, 13.4 MiB alone). Run one --flavor per process for \
            figures that stand alone.

            Fails (exit status 1) when the peak RSS above that baseline exceeds --rss-limit-mib \
            (default 64 MiB), when retired and reclaimed differ, or when a reader saw a \
            reclaimed object. Each flavor's run takes --duration plus its start (the threads, \
            a barrier: well under a second) and its stop: a throttled writer sees the stop \
            within one throttled retire (the backlog drains, or the policy's 1 s without \
            progress ends the wait), then the backlog, bounded by the high-water mark, drains \
            (about a second). So a run ends within --duration + 5 s per flavor.
            """
    )

    enum Policy: String, CaseIterable, ExpressibleByArgument {
        case standard, expedited

        var policy: RCUBacklogPolicy { self == .standard ? .standard : .expedited }
    }

    @Option(help: "The flavor: memb, qsbr, bp, mb or all.")
    var flavor: FlavorChoice = .all

    @Option(help: "Seconds of flood per flavor (at most 3600).")
    var duration = 10.0

    @Option(help: "Retiring threads (1...64).")
    var writers = 2

    @Option(help: "Reading threads (0...64).")
    var readers = 2

    @Option(help: "The backlog policy: standard or expedited.")
    var policy: Policy = .standard

    @Option(help: "Fail (exit status 1) when peak RSS above the baseline exceeds this many MiB (1...65536).")
    var rssLimitMib = 64

    @OptionGroup var output: JSONOutputOption

    /// The longest run accepted per flavor.
    static let maximumDuration = 3600.0

    func validate() throws {
        try flavor.validate(accepting: FlavorChoice.oneFlavorOrAll)
        try DurationBound.validate(duration, maximum: Self.maximumDuration)
        guard (1...64).contains(writers) else { throw ValidationError("--writers must be within 1...64, not \(writers).") }
        guard (0...64).contains(readers) else { throw ValidationError("--readers must be within 0...64, not \(readers).") }
        guard (1...65_536).contains(rssLimitMib) else {
            throw ValidationError("--rss-limit-mib must be within 1...65536, not \(rssLimitMib).")
        }
    }

    func run() throws {
        if !output.json {
            print("flood: \(writers) writer(s), \(readers) reader(s), \(duration) s per flavor, policy \(policy.rawValue), RSS limit \(rssLimitMib) MiB\n")
            print(FloodResult.header)
        }
        var failed: [String] = []
        for choice in flavor.flavors {
            let result =
                switch choice {
                case .memb: FloodRun<RCUMemb>(self).run()
                case .qsbr: FloodRun<RCUQSBR>(self).run()
                case .bp: FloodRun<RCUBulletproof>(self).run()
                case .mb: FloodRun<RCUMemoryBarrier>(self).run()
                }
            print(output.json ? result.json : result.row)
            failed += result.failures
        }
        if !failed.isEmpty {
            CurrentError.print("flood FAILED: " + failed.joined(separator: "; "))
            throw ExitCode.failure
        }
    }
}
