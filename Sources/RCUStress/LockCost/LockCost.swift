#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import ArgumentParser
import CReference
@_spi(Benchmarking) import Lockdep

/// `rcu-stress lock-cost`: Lockdep's cost acceptance, "a checked mutex
/// lock/unlock pair on a cached chain <= 1.25x a plain pthread mutex pair (issue 14),
/// measured in one run; with checks compiled out, 1.00x", in a process with threads (before
/// its first thread, glibc's mutex takes no atomic instruction). Beside them a C floor
/// (`creference_lockdep_floor_loop`): the plain pair plus only the held-lock stack work of a
/// cached chain, so a run shows how much of CheckedMutex's cost any such validator pays on
/// this machine and how much its own checks add.
struct LockCost: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lock-cost",
        abstract: "An uncontended CheckedMutex lock/unlock pair against a plain pthread mutex pair, in one process.",
        discussion: """
            Times, on one thread, N pthread_mutex_lock/unlock pairs on a plain mutex, N \
            lock()/unlock() pairs on a CheckedMutex (after a warm-up, so Lockdep's chain \
            for the single held lock is cached), and N pairs of a C floor: the plain pair \
            with the least any held-lock-stack validator does on a cached chain (a push of \
            instance, chain key, class and site, a chain-cache probe, a pop), without \
            CheckedMutex's owner word, published wait, gates and task; and N plain pairs \
            with 64 register additions around each (four chains, no stores, no checks), a \
            yardstick for what simple work beside the pair's atomic instructions costs on this \
            machine: the checked ratio moves from CPU to CPU with it. The loops alternate \
            round by round and each keeps its fastest round. Prints nanoseconds per pair, \
            the ratios to the plain pair, and whether Lockdep's checks are compiled into \
            this build (release builds: only with --traits LockdepInRelease).

            The loops run twice: first before the process has started a thread, when glibc's \
            pthread_mutex_lock and unlock skip their atomic instructions (a shortcut no lock \
            shared between threads ever takes), then after a thread has run, as in any \
            program whose locks are shared. The target is for the second: checked/plain \
            <= 1.25 with checks, ~1.00 without.

            --iterations is at least 10,000, --rounds at most 100, and --iterations x \
            --rounds at most 1,000,000,000. --json prints the threaded figures as \
            {"checks_compiled_in":true,"optimized":true,"plain_ns":…,"checked_ns":…,"ratio":…,"floor_ns":…,"floor_ratio":…, \
            "padded_ns":…,"padded_ratio":…,"ns_per_padding_add":…,"checked_extra_in_padding_adds":… (null with \
            checks compiled out, or when the padding cost under 5% of the plain pair: a noisy run), \
            then the first run's as "single_threaded_timed" (whether glibc counted the process \
            single-threaded throughout it), "single_threaded_plain_ns", "single_threaded_checked_ns", \
            "single_threaded_ratio", "single_threaded_floor_ns", "single_threaded_floor_ratio", \
            "single_threaded_padded_ns", \
            then "line_offset" (every mutex's offset in its 64-byte line), "iterations" and "rounds"}.
            """
    )

    @Option(help: "Lock/unlock pairs per timed round.")
    var iterations = 2_000_000

    @Option(help: "Timed rounds per loop; the fastest round is reported.")
    var rounds = 7

    @OptionGroup var output: JSONOutputOption

    /// The most lock/unlock pairs one loop may time over all its rounds, in each of the two
    /// runs: a few minutes at most in a release build (6-40 ns a pair), so no accepted run goes
    /// on for days.
    static let maxPairsPerLoop = 1_000_000_000
    /// The fewest pairs a round may time: below this the clock reads dominate the ratio.
    static let minimumIterations = 10_000
    /// The most rounds per loop, as `read-cost` allows.
    static let maximumRounds = 100

    func validate() throws {
        guard iterations >= Self.minimumIterations else {
            throw ValidationError(
                "--iterations must be at least \(Self.minimumIterations), not \(iterations): fewer pairs time the clock, not the lock.")
        }
        guard (1...Self.maximumRounds).contains(rounds) else {
            throw ValidationError(
                "--rounds must be within 1...\(Self.maximumRounds), not \(rounds): each round has a fixed cost of its own.")
        }
        let (perLoop, overflow) = iterations.multipliedReportingOverflow(by: rounds)
        guard !overflow, perLoop <= Self.maxPairsPerLoop else {
            throw ValidationError("""
                --iterations \(iterations) with --rounds \(rounds) is too many pairs: at most \(Self.maxPairsPerLoop) \
                pairs per loop over all rounds (each of the four loops times that many twice: before the first thread and after), so a release run stays within a few minutes.
                """)
        }
    }

    /// One alternated measurement of the four loops.
    struct Phase {
        /// Whether glibc counted the process single-threaded from the phase's start to its end
        /// (a thread started by anything else during the phase ends that state part-way).
        let singleThreaded: Bool
        let plain: Double
        let checked: Double
        let floor: Double
        let padded: Double
        var ratio: Double { checked / plain }
        var floorRatio: Double { floor / plain }
        var paddedRatio: Double { padded / plain }
        /// What one of the padded loop's additions (four independent chains) adds to a pair here:
        /// a yardstick for how this CPU charges simple work beside the atomics, not a cost every
        /// instruction has.
        var nanosecondsPerPaddingAdd: Double { (padded - plain) / Double(CREFERENCE_PAD_INSTRUCTIONS) }
        /// The checked pair's extra time as that many such additions; not a number when checks
        /// are compiled out, or when the padding cost less than 5% of the plain pair (a noisy
        /// run: dividing by a near-zero cost would print any number).
        var checkedExtraInPaddingAdds: Double {
            guard Lockdep.checksCompiledIn, padded - plain >= 0.05 * plain else { return .nan }
            return (checked - plain) / nanosecondsPerPaddingAdd
        }
    }

    func run() throws {
        let checked = CheckedMutex("lock-cost.checked")
        // The plain and floor mutexes sit at the checked one's offset in a cache line, so the
        // loops differ only in the checks (see `primitiveAddress`).
        let offset = Int(UInt(bitPattern: checked.primitiveAddress) % UInt(Self.cacheLine))
        let plain = Self.allocateMutex(atLineOffset: offset)
        let floorMutex = Self.allocateMutex(atLineOffset: offset)
        let paddedMutex = Self.allocateMutex(atLineOffset: offset)
        defer {
            Self.deallocateMutex(plain)
            Self.deallocateMutex(floorMutex)
            Self.deallocateMutex(paddedMutex)
        }
        // Warm-up pairs cache the chain before anything is timed.
        LockCostLoops.checkedPair(checked)
        LockCostLoops.plainPair(plain)
        let measurement = ReadCostMeasurement(iterations: iterations, rounds: rounds)
        func timePhase() throws -> Phase {
            let singleThreadedAtStart = creference_process_is_single_threaded()
            let ns = try measurement.nanosecondsPerRead(sides: 4) { side, count in
                switch side {
                case 0: LockCostLoops.plainLoop(plain, iterations: count)
                case 1: LockCostLoops.checkedLoop(checked, iterations: count)
                case 2: Int(creference_lockdep_floor_loop(floorMutex, 1, UInt64(count)))
                default: Int(creference_padded_pair_loop(paddedMutex, UInt64(count)))
                }
            }
            // Read again at the end: the state only goes from single- to multi-threaded, so
            // both reads true means the whole phase ran without the atomics.
            let singleThreaded = singleThreadedAtStart && creference_process_is_single_threaded()
            return Phase(singleThreaded: singleThreaded, plain: ns[0], checked: ns[1], floor: ns[2], padded: ns[3])
        }
        // glibc's pthread_mutex takes no atomic instruction until the process starts its first
        // thread: time that first (it can only come first), then the pairs every program that
        // shares a lock between threads pays, which the target is for.
        let beforeThreads = try timePhase()
        try Self.startAndJoinAThread()
        let withThreads = try timePhase()
        guard !withThreads.singleThreaded else {
            throw ReadCostError(description: "glibc still counts the process single-threaded after a thread ran")
        }
        if output.json {
            var line = JSONLine()
            line.add("checks_compiled_in", Lockdep.checksCompiledIn)
            line.add("optimized", Self.optimized)
            line.add("plain_ns", withThreads.plain)
            line.add("checked_ns", withThreads.checked)
            line.add("ratio", withThreads.ratio)
            line.add("floor_ns", withThreads.floor)
            line.add("floor_ratio", withThreads.floorRatio)
            line.add("padded_ns", withThreads.padded)
            line.add("padded_ratio", withThreads.paddedRatio)
            line.add("ns_per_padding_add", withThreads.nanosecondsPerPaddingAdd)
            line.add("checked_extra_in_padding_adds", withThreads.checkedExtraInPaddingAdds)
            line.add("single_threaded_timed", beforeThreads.singleThreaded)
            line.add("single_threaded_plain_ns", beforeThreads.plain)
            line.add("single_threaded_checked_ns", beforeThreads.checked)
            line.add("single_threaded_ratio", beforeThreads.ratio)
            line.add("single_threaded_floor_ns", beforeThreads.floor)
            line.add("single_threaded_floor_ratio", beforeThreads.floorRatio)
            line.add("single_threaded_padded_ns", beforeThreads.padded)
            line.add("line_offset", offset)
            line.add("iterations", iterations)
            line.add("rounds", rounds)
            print(line.text)
        } else {
            print("checks_compiled_in: \(Lockdep.checksCompiledIn)")
            print("optimized: \(Self.optimized)" + (Self.optimized ? "" : " (a debug build: the target is for release builds)"))
            print("rounds: \(rounds) x \(iterations) pairs per loop, fastest kept; the loops alternate in this process")
            print("every mutex at offset \(offset) of a \(Self.cacheLine)-byte line (glibc's pair cost depends on it)\n")
            print("lock pair                         ns/pair")
            print("in a process with threads (every pthread pair takes its atomic instructions):")
            Self.printPhase(withThreads, target: "(target: <= 1.25 with checks, 1.00 without)")
            if beforeThreads.singleThreaded {
                print("\nbefore the process started a thread (glibc's pthread_mutex skips its atomic instructions):")
                Self.printPhase(beforeThreads, target: "(no target: no lock shared between threads runs so)")
            } else {
                print("\n(the first run was not single-threaded throughout: another thread existed or started during it)")
                Self.printPhase(beforeThreads, target: "")
            }
        }
    }

    static func printPhase(_ phase: Phase, target: String) {
        print(Columns.left("  pthread_mutex lock+unlock", 28) + ReadCostResult.fixed(phase.plain, width: 14))
        print(Columns.left("  CheckedMutex lock+unlock", 28) + ReadCostResult.fixed(phase.checked, width: 14))
        print(Columns.left("  C floor lock+unlock", 28) + ReadCostResult.fixed(phase.floor, width: 14)
            + "   (held-stack push, chain-cache probe, pop: no owner word, wait, gates or task)")
        print(Columns.left("  ratio checked/plain", 28) + ReadCostResult.fixed(phase.ratio, width: 14) + "   " + target)
        print(Columns.left("  ratio floor/plain", 28) + ReadCostResult.fixed(phase.floorRatio, width: 14))
        print(Columns.left("  pthread pair + \(CREFERENCE_PAD_INSTRUCTIONS) adds", 28)
            + ReadCostResult.fixed(phase.padded, width: 14)
            + "   (\(CREFERENCE_PAD_INSTRUCTIONS) register additions in 4 chains, no stores: simple work beside the atomics)")
        let worth = phase.checkedExtraInPaddingAdds
        print(Columns.left("  ratio padded/plain", 28) + ReadCostResult.fixed(phase.paddedRatio, width: 14)
            + "   (\(ReadCostResult.fixed(phase.nanosecondsPerPaddingAdd, width: 0)) ns an addition; the checks' extra time: "
            + (worth.isFinite ? "\(Int(worth.rounded())) additions' worth)"
                : Lockdep.checksCompiledIn ? "not measurable in this run)" : "none, compiled out)"))
    }

    static let cacheLine = 64

    /// Whether this is an optimized build: the target is for release builds, and a debug
    /// build's checked pair costs tens of times the plain one.
    static var optimized: Bool {
        #if DEBUG
        false
        #else
        true
        #endif
    }

    /// A normal pthread mutex at `offset` bytes into a cache line.
    static func allocateMutex(atLineOffset offset: Int) -> UnsafeMutablePointer<pthread_mutex_t> {
        let raw = UnsafeMutableRawPointer.allocate(byteCount: cacheLine + MemoryLayout<pthread_mutex_t>.size,
                                                   alignment: cacheLine)
        let mutex = (raw + offset).bindMemory(to: pthread_mutex_t.self, capacity: 1)
        var attributes = pthread_mutexattr_t()
        pthread_mutexattr_init(&attributes)
        pthread_mutexattr_settype(&attributes, Int32(PTHREAD_MUTEX_NORMAL))
        pthread_mutex_init(mutex, &attributes)
        pthread_mutexattr_destroy(&attributes)
        return mutex
    }

    static func deallocateMutex(_ mutex: UnsafeMutablePointer<pthread_mutex_t>) {
        pthread_mutex_destroy(mutex)
        let offset = Int(UInt(bitPattern: mutex) % UInt(cacheLine))
        (UnsafeMutableRawPointer(mutex) - offset).deallocate()
    }

    /// Makes the process multi-threaded for glibc: a thread that returns at once.
    static func startAndJoinAThread() throws {
        var thread = pthread_t()
        let started = pthread_create(&thread, nil, { _ in nil }, nil)
        guard started == 0 else {
            throw ReadCostError(description: "pthread_create failed (\(started)): cannot time the pairs in a threaded process")
        }
        pthread_join(thread, nil)
    }
}
