import ArgumentParser
import RCU

/// `rcu-stress torture`: rcutorture's regression test of a flavor's grace periods.
struct Torture: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "torture",
        abstract: "rcutorture on the Swift API: readers record the age of the element they hold; any age past 1 means RCU is broken.",
        discussion: """
            --mode kernel (the default) is the Linux rcutorture writer: it publishes elements \
            from a pool and, after each grace period, ages every retired one; at age 10 (the \
            pipe length) an element is freed and reused. Readers record the age they observe \
            at the end of each read section (the "Reader Pipe" histogram, ages 0...10) and \
            count freed elements they dereference ("mberror").

            --mode perf|rperf|uperf|stress are liburcu's rcutorture modes \
            (tests/regression/rcutorture.h; `rcutorture_urcu_<flavor> N <mode> 1 \
            callrcu_<workers>`): perf runs N readers of empty sections and one updater waiting \
            for grace periods back to back, rperf the readers alone, uperf N updaters alone \
            (--readers is the thread count, as liburcu's first argument), stress N readers, an \
            updater cycling ten elements through synchronize() and call_rcu, and five more \
            updaters (rcu_stress_count histogram and n_mberror). --mode all runs the four. \
            liburcu runs perf modes for 1 s and stress for 10 s.

            --callback-workers global|per-cpu|per-thread|all: where call_rcu callbacks run \
            (liburcu's callrcu_global, callrcu_percpu, callrcu_perthread): per-CPU workers \
            are created before the threads and freed after them, per-thread workers by each \
            updater. Every updater queues a probe callback before it ends; the run fails if \
            one never runs or, per-thread, if an updater got no worker of its own.

            Threads: at most 64 per online CPU (\(TortureThreads.maxThreads) here). The \
            threads never block, so every one must be scheduled to see the stop flag, and a \
            grace period waits for every reader preempted in a section: a run takes its \
            duration plus a start (creating and registering the threads) and a stop \
            (joining them) that grow with threads per CPU; both are printed (start_s, stop_s). \
            At the limit on 2 CPUs, release build: start at most 0.11 s, stop at most 0.66 s \
            (docs/regression.md).

            Prints the counts and a verdict (SUCCESS or FAILURE) per run; exits with status 1 \
            on failure. --flavor all, --mode all and --callback-workers all run every \
            combination (flavor, then mode, then workers). --json prints one JSON object per run.
            """
    )

    @Option(help: "The flavor to torture: memb, qsbr, bp, mb, or all.")
    var flavor: FlavorChoice

    @Option(help: "Seconds to run each flavor, mode and worker choice; fractions allowed.")
    var duration: Double

    @Option(help: "Reader threads (uperf: updater threads).")
    var readers = 2

    @Option(help: "The test: kernel, perf, rperf, uperf, stress, or all (liburcu's four).")
    var mode = TortureMode.kernel

    @Option(help: "Where call_rcu callbacks run: global, per-cpu, per-thread, or all.")
    var callbackWorkers = TortureCallbackWorkers.global

    @OptionGroup var output: JSONOutputOption

    /// Deliberately broken RCU: the writer frees without waiting for grace periods (the run must fail).
    @Flag(help: .hidden)
    var brokenWriter = false

    func validate() throws {
        try flavor.validate(accepting: FlavorChoice.oneFlavorOrAll)
        try DurationBound.validate(duration)
        guard readers >= 1 else { throw ValidationError("--readers must be 1 or more, not \(readers).") }
        let threads = mode.threads(for: min(readers, Urcu.maxThreads))
        guard readers <= Urcu.maxThreads, threads <= TortureThreads.maxThreads else {
            throw ValidationError(
                "--readers \(readers) would start \(mode == .all ? "up to " : "")\(readers > Urcu.maxThreads ? "more than \(Urcu.maxThreads)" : "\(threads)") threads; "
                    + "at most \(TortureThreads.maxThreadsPerCPU) per online CPU (\(TortureThreads.maxThreads) on this "
                    + "machine's \(TortureThreads.onlineCPUs)): torture threads never block, so start and stop "
                    + "grow with threads per CPU and would run far past --duration.")
        }
        if brokenWriter && !mode.hasElementWriter {
            throw ValidationError("--broken-writer needs --mode kernel or stress.")
        }
    }

    func run() throws {
        var failed = false
        for choice in flavor.flavors {
            for mode in mode.modes {
                for workers in callbackWorkers.choices {
                    let result: TortureResult =
                        switch choice {
                        case .memb: run(RCUMemb.self, mode, workers)
                        case .qsbr: run(RCUQSBR.self, mode, workers)
                        case .bp: run(RCUBulletproof.self, mode, workers)
                        case .mb: run(RCUMemoryBarrier.self, mode, workers)
                        }
                    if output.json {
                        print(result.jsonLine)
                    } else {
                        result.lines.forEach { print($0) }
                    }
                    failed = failed || !result.passed
                }
            }
        }
        if failed { throw ExitCode.failure }
    }

    private func run<Flavor: RCUFlavor>(
        _: Flavor.Type, _ mode: TortureMode, _ workers: TortureCallbackWorkers
    ) -> TortureResult {
        switch mode {
        case .kernel:
            TortureRun<Flavor>.run(seconds: duration, readers: readers, workers: workers, brokenWriter: brokenWriter)
        case .stress:
            TortureStress<Flavor>.run(seconds: duration, readers: readers, workers: workers, brokenWriter: brokenWriter)
        case .perf, .rperf, .uperf, .all:
            TorturePerf<Flavor>.run(mode: mode, seconds: duration, threads: readers, workers: workers)
        }
    }
}
