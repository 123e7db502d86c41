import ArgumentParser
import IOMMU
import Lockdep
import RCU

/// `rcu-stress registry`: the IOMMU registry benchmark (BENCHMARKS.md, IOMMU.md section 8),
/// and, with no arguments, the package's default run: every design side by side.
struct RegistryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "registry",
        abstract: "ISR-like readers look up device -> group -> group device on the IOMMU registry while writers probe and release devices.",
        discussion: """
            R reader threads, each lookup an "interrupt" (Lockdep hardirq context, no mutex), pick \
            random devices and look up device -> group -> group device; one iteration in \
            --report-every reports the device broken instead. W writer threads release and \
            re-probe their own devices as fast as they can (with one device per group, every \
            release destroys a group and every probe creates one). Designs: rcu (D1: RCU lookup, \
            per-gdev worker), devmutex (D2: per-dev_iommu worker and mutex), driver-only (D0), and \
            the registry under one pthread rwlock or mutex (rwlock, mutex: what a user would write \
            without RCU), and the ceiling, unsynchronized: the same lookups with no synchronization at \
            all (one read section spans the run; it refuses writers). --design all (the default) runs \
            them in turn and prints the ratios and BENCHMARKS.md's targets; with --writers 0 it adds \
            the ceiling and the readers-only target.

            Reports lookups/s, writer ops/s, lookup latency p50/p99/p99.9 (HdrHistogram, one lookup \
            in --sample-every timed, clock cost included), report-to-quarantine latency, the peak \
            call_rcu backlog and RSS (with a 10-point series), and the correctness counters: \
            use-after-free, invariant violations (and WARNs), lost and late reports, writer errors, \
            Lockdep reports. Exits with status 1 unless they are all zero.

            Flow control is the RCU library's backlog policy (RCUFlavor.backlogPolicy): past its \
            high-water mark the registry's retires throttle the writers (--backlog-limit sets the mark).

            Start and stop: the threads start together after setup (probing every device) and \
            stop within about 10 ms of the duration; teardown then releases every device. With the \
            limits below (at most \(RegistryCommand.maxThreads) threads, \(RegistryCommand.maxDevices) \
            devices) setup plus teardown take under \(RegistryCommand.startStopBoundSeconds) s per round \
            in a release build; arguments past the limits are refused (exit status 64).

            Lockdep's checks exist only in builds that compile them in: debug builds, or \
            `swift build -c release --traits LockdepInRelease` (for example with \
            --scratch-path .build-lockdep, then run .build-lockdep/release/rcu-stress registry --lockdep). \
            In such a build every run counts Lockdep reports; --lockdep demands such a build and is a \
            usage error without one.
            """
    )

    @Option(help: "rcu, devmutex, driver-only, rwlock, mutex, unsynchronized (the ceiling; no writers), or all (each in turn, with ratios).")
    var design: RegistryDesignChoice = .all

    @Option(help: "ISR-like reader threads.")
    var readers = 2

    @Option(help: "Writer threads (each owns a share of the devices).")
    var writers = 1

    @Option(help: "IOMMU groups (one group tag each).")
    var groups = 64

    @Option(help: "Devices per group.")
    var devicesPerGroup = 1

    @Option(help: "Seconds to run each design; fractions allowed.")
    var duration = 5.0

    @Option(help: ArgumentHelp(
        "Run the designs in turn this many times, duration/rounds seconds each (default: 5 with --design all, else 1).",
        discussion: "Interleaving spreads the drift of a shared machine over every design alike, so the ratios compare like with like. Counts add up over the rounds, peaks take the largest, latency histograms merge."))
    var rounds: Int?

    @Option(help: "The registry's RCU flavor: memb or qsbr.")
    var flavor: FlavorChoice = .memb

    @Flag(help: "Require Lockdep's checks in this build (debug, or release with --traits LockdepInRelease).")
    var lockdep = false

    @OptionGroup var output: JSONOutputOption

    @Option(help: "Time one lookup in this many (latency sample).")
    var sampleEvery = 128

    @Option(help: "Report a fault on one reader iteration in this many.")
    var reportEvery = 4096

    @Option(help: ArgumentHelp(
        "The registry flavor's call_rcu backlog high-water mark for the run (low-water mark: half); 0: unbounded. Default: the library's policy (100000).",
        discussion: "Flow control, as the kernel applies to callback floods, is the RCU library's RCUFlavor.backlogPolicy: past the mark the registry's retires throttle the writers until the backlog drains to the low-water mark. Unbounded, a writer that retires faster than the call_rcu worker runs callbacks grows the backlog and RSS without bound."))
    var backlogLimit: Int?

    /// The most devices a run may create (setup probes each, teardown releases each).
    static let maxDevices = 100_000
    /// The most reader and writer threads a run may start. On this package's 2-core machines
    /// more threads only time-slice; 4000 readers took 104 s to run 0.1 s (thread start, RCU
    /// registration, and memb grace periods that wait on every registered reader).
    static let maxThreads = 256
    /// The documented bound on one round's setup plus teardown at the limits (release build).
    static let startStopBoundSeconds = 10

    /// The flavors the registry runs on: memb (the default) and qsbr, whose ISR-like readers
    /// stay online in a reader scope and announce quiescent states.
    static let flavors: [FlavorChoice] = [.memb, .qsbr]

    /// Whether Lockdep's checks are compiled into this build.
    static var checksCompiledIn: Bool { Lockdep.checksCompiledIn }

    func validate() throws {
        try DurationBound.validate(duration)
        if let rounds {
            guard rounds >= 1 else { throw ValidationError("--rounds must be 1 or more, not \(rounds).") }
        }
        // Checked on the rounds the run makes, given or defaulted (5 with --design all).
        guard duration / Double(roundCount) >= 0.01 else {
            let given = rounds == nil ? " (the default with --design \(design.rawValue))" : ""
            throw ValidationError("--rounds \(roundCount)\(given) leaves under 10 ms per round of --duration \(duration).")
        }
        guard readers >= 1 else { throw ValidationError("--readers must be 1 or more, not \(readers).") }
        guard writers >= 0 else { throw ValidationError("--writers must be 0 or more, not \(writers).") }
        guard readers + writers <= Self.maxThreads else {
            throw ValidationError("""
                --readers + --writers must be at most \(Self.maxThreads), not \(readers + writers): more threads only \
                time-slice on a few cores, and their start and stop would outrun --duration.
                """)
        }
        guard design != .unsynchronized || writers == 0 else {
            throw ValidationError("--design unsynchronized is the readers-only ceiling: it refuses writers (pass --writers 0).")
        }
        guard groups >= 1 else { throw ValidationError("--groups must be 1 or more, not \(groups).") }
        guard devicesPerGroup >= 1 else {
            throw ValidationError("--devices-per-group must be 1 or more, not \(devicesPerGroup).")
        }
        guard groups <= Self.maxDevices, devicesPerGroup <= Self.maxDevices / groups else {
            throw ValidationError("--groups x --devices-per-group must be at most \(Self.maxDevices).")
        }
        guard writers <= groups * devicesPerGroup else {
            throw ValidationError("--writers (\(writers)) must not exceed the devices (\(groups * devicesPerGroup)): each writer owns some.")
        }
        guard sampleEvery >= 1 else { throw ValidationError("--sample-every must be 1 or more, not \(sampleEvery).") }
        guard reportEvery >= 1 else { throw ValidationError("--report-every must be 1 or more, not \(reportEvery).") }
        if let backlogLimit {
            guard backlogLimit >= 0 else { throw ValidationError("--backlog-limit must be 0 or more, not \(backlogLimit).") }
            guard backlogLimit != 1 else { throw ValidationError("--backlog-limit must be 0 (unbounded) or at least 2.") }
        }
        try flavor.validate(accepting: Self.flavors)
        guard !lockdep || Self.checksCompiledIn else {
            throw ValidationError("""
                --lockdep: Lockdep's checks are not compiled into this release build. Build with them and run that binary:
                  swift build -c release --traits LockdepInRelease --scratch-path .build-lockdep
                  .build-lockdep/release/rcu-stress registry --lockdep
                (debug builds always have them: swift run rcu-stress registry --lockdep)
                """)
        }
    }

    /// The rounds a run makes (``rounds``, or its default).
    var roundCount: Int { rounds ?? (design == .all ? 5 : 1) }

    func run() throws {
        let timerOverhead = MonotonicClock.timerOverheadNanoseconds()
        let designs = design.designs(writers: writers)
        if !output.json && design == .all {
            print("rcu-stress registry: each design for \(RegistryResult.format(duration)) s in \(roundCount) interleaved "
                  + "rounds, rcu_\(flavor.name), \(readers) readers, \(writers) writers, \(groups) groups x \(devicesPerGroup) devices, lockdep "
                  + "\(Self.checksCompiledIn ? "on" : "off")")
        }
        var collected: [RegistryResult?] = Array(repeating: nil, count: designs.count)
        for _ in 0..<roundCount {
            for (index, choice) in designs.enumerated() {
                let configuration = RegistryRunConfiguration(
                    design: choice, flavor: flavor.flavor ?? .memb, readers: readers, writers: writers, groups: groups,
                    devicesPerGroup: devicesPerGroup, seconds: duration / Double(roundCount), sampleEvery: sampleEvery,
                    reportEvery: reportEvery, backlogLimit: backlogLimit)
                let round =
                    switch configuration.flavor {
                    case .memb: RegistryRun<RCUMemb>.run(configuration)
                    case .qsbr: RegistryRun<RCUQSBR>.run(configuration)
                    case .bp, .mb: preconditionFailure("validate() accepts memb and qsbr only")
                    }
                if collected[index] == nil { collected[index] = round } else { collected[index]!.absorb(round) }
            }
        }
        let results = collected.map { result -> RegistryResult in
            var result = result!
            result.timerOverheadNanoseconds = timerOverhead
            return result
        }
        for result in results {
            if output.json {
                print(result.jsonLine)
            } else if design != .all {
                result.lines.forEach { print($0) }
            }
        }
        if !output.json && design == .all {
            RegistryComparison(results: results).lines.forEach { print($0) }
        }
        if results.contains(where: { !$0.passed }) { throw ExitCode.failure }
    }
}
