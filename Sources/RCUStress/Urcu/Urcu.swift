import ArgumentParser
import RCU

/// `rcu-stress urcu`: liburcu's tests/benchmark/test_urcu* in Swift, with the
/// same arguments and the same `SUMMARY` line, so the two compare column by column.
struct Urcu: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "urcu",
        abstract: "liburcu's test_urcu benchmark on the Swift API: readers against pointer-exchanging writers.",
        discussion: """
            Readers loop as test_urcu's thr_reader, doing per read what it does and nothing \
            else: read lock -> assert the read section is ongoing (isInReadSection, live in \
            release builds, as test_urcu's assert) -> dereference the published node -> test \
            it for nil and check its value -> the -c busy loop if RDUR is not 0 -> unlock -> \
            count the read (test_urcu's URCU_TLS(nr_reads)++: the same increment of a \
            thread-local at a fixed offset from the thread pointer) -> test the stop flag. \
            They run in a withReader scope; qsbr readers announce a quiescent state every 1024 reads, as test_urcu_qsbr's. \
            --sample-every N also times one read in N, which test_urcu does not (a countdown \
            per read): latency runs are not the ones to compare with liburcu. Writers allocate a node, exchange the pointer, wait for a grace period, \
            then poison and free the old node; with -b BATCH they instead retire old nodes in \
            batches of BATCH with one call_rcu each. A reader that sees a poisoned node proves a \
            broken grace period: the run fails with exit status 1. --flavor rwlock|mutex guard \
            one node with a pthread lock instead, and writers poison and restore it in place \
            under the lock (liburcu's test_rwlock, test_mutex).

            Prints liburcu's line: SUMMARY <prog> testdur N nr_readers N rdur N wdur N \
            nr_writers N wdelay N nr_reads N nr_writes N nr_ops N, then, with --sample-every, \
            read latency percentiles (HdrHistogram, one read in N timed, clock cost included), \
            the peak call_rcu backlog and peak RSS. --json prints one JSON object instead. \
            Delays and durations are busy-wait loop counts, as in liburcu.

            Bounds: a run ends within DURATION plus its start and stop: at most 32 threads \
            per CPU (64 at least) start and stop within about a second, and -c, -d and -e take \
            at most 100000000 loops each (about 0.1 s), so the last read section, writer delay \
            and write section overshoot by well under a second. Larger values are refused \
            (exit status 64).
            """
    )

    @Argument(help: "Reader threads (NR_READERS).")
    var readers: Int

    @Argument(help: "Writer threads (NR_WRITERS).")
    var writers: Int

    @Argument(help: "Seconds to run (DURATION); fractions allowed.")
    var duration: Double

    @Option(name: .customShort("d"), help: "Writer delay between updates, in busy-wait loops (WDELAY).")
    var writerDelay = 0

    @Option(name: .customShort("c"), help: "Read-side critical section duration, in busy-wait loops (RDUR).")
    var readDuration = 0

    @Option(name: .customShort("e"), help: "Write-side duration between publish and grace period, in loops (WDUR).")
    var writeDuration = 0

    @Option(name: .customShort("b"), help: "Retire old nodes in batches of BATCH with one call_rcu each (RCU flavors).")
    var batch: Int?

    @Option(name: .customShort("a"), help: "Pin the next thread (readers first) to this CPU; repeat for more.")
    var cpus: [Int] = []

    @Flag(name: .customShort("v"), help: "Verbose: configuration and thread start/end lines.")
    var verbose = false

    @Option(help: "The synchronization under test: memb, qsbr, bp, mb, rwlock or mutex.")
    var flavor: FlavorChoice

    @Option(help: "Time one read in this many for the latency percentiles (default: none timed, test_urcu's loop).")
    var sampleEvery: Int?

    @OptionGroup var output: JSONOutputOption

    /// The largest thread count accepted: far past any machine this runs on, short of exhausting memory.
    static let maxThreads = 4096

    func validate() throws {
        try flavor.validate(accepting: FlavorChoice.urcuChoices)
        guard readers >= 0 else { throw ValidationError("NR_READERS must be 0 or more, not \(readers).") }
        guard writers >= 0 else { throw ValidationError("NR_WRITERS must be 0 or more, not \(writers).") }
        guard readers + writers > 0 else { throw ValidationError("At least one reader or writer is needed.") }
        guard readers + writers <= UrcuConfiguration.maximumThreads else {
            throw ValidationError(
                "At most \(UrcuConfiguration.maximumThreads) threads (32 per CPU), not \(readers + writers): "
                    + "more spinning threads than that take longer to start and stop than the run.")
        }
        try DurationBound.validate(duration, name: "DURATION")
        let loops = UrcuConfiguration.maximumLoops
        guard (0...loops).contains(writerDelay) else { throw ValidationError("-d WDELAY must be within 0...\(loops) loops, not \(writerDelay).") }
        guard (0...loops).contains(readDuration) else { throw ValidationError("-c RDUR must be within 0...\(loops) loops, not \(readDuration).") }
        guard (0...loops).contains(writeDuration) else { throw ValidationError("-e WDUR must be within 0...\(loops) loops, not \(writeDuration).") }
        if let batch {
            guard (1...UrcuConfiguration.maximumBatch).contains(batch) else {
                throw ValidationError("-b BATCH must be within 1...\(UrcuConfiguration.maximumBatch), not \(batch).")
            }
            guard flavor.flavor != nil else { throw ValidationError("-b BATCH needs an RCU flavor, not --flavor \(flavor.name).") }
        }
        let available = CPUAffinity.configuredCPUs
        for cpu in cpus where cpu < 0 || cpu >= available {
            throw ValidationError("-a \(cpu): this machine has CPUs 0...\(available - 1).")
        }
        if let sampleEvery, sampleEvery < 1 {
            throw ValidationError("--sample-every must be 1 or more, not \(sampleEvery).")
        }
    }

    /// The validated parameters.
    var configurationValues: UrcuConfiguration {
        UrcuConfiguration(
            flavor: flavor, readers: readers, writers: writers, duration: duration, writerDelay: writerDelay,
            readDuration: readDuration, writeDuration: writeDuration, batch: batch, cpus: cpus, verbose: verbose,
            sampleEvery: sampleEvery)
    }

    func run() throws {
        let config = configurationValues
        let result: UrcuResult =
            switch flavor {
            case .rcu(.memb): UrcuRCUFlavorRun<RCUMemb>.run(config)
            case .rcu(.qsbr): UrcuRCUFlavorRun<RCUQSBR>.run(config)
            case .rcu(.bp): UrcuRCUFlavorRun<RCUBulletproof>.run(config)
            case .rcu(.mb): UrcuRCUFlavorRun<RCUMemoryBarrier>.run(config)
            case .rwlock: UrcuLockBaselineRun<BaselineRWLock>.run(config)
            case .mutex: UrcuLockBaselineRun<BaselineMutex>.run(config)
            case .all: preconditionFailure("validate() refuses --flavor all")
            }
        if output.json {
            print(result.jsonLine)
        } else {
            print(result.summaryLine)
            result.detailLines.forEach { print($0) }
        }
        if !result.passed { throw ExitCode.failure }
    }
}
