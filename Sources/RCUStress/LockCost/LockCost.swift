#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import ArgumentParser
import Lockdep

/// `rcu-stress lock-cost`: Lockdep's cost acceptance, "a checked mutex
/// lock/unlock pair on a cached chain <= 1.25x a plain pthread mutex pair (issue 14),
/// measured in one run; with checks compiled out, 1.00x".
struct LockCost: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lock-cost",
        abstract: "An uncontended CheckedMutex lock/unlock pair against a plain pthread mutex pair, in one process.",
        discussion: """
            Times, on one thread, N pthread_mutex_lock/unlock pairs on a plain mutex and N \
            lock()/unlock() pairs on a CheckedMutex (after a warm-up, so Lockdep's chain \
            for the single held lock is cached). The two loops alternate round by round and \
            each keeps its fastest round. Prints nanoseconds per pair, the ratio \
            checked/plain, and whether Lockdep's checks are compiled into this build \
            (release builds: only with --traits LockdepInRelease). Target: ratio <= 1.25 with \
            checks, ~1.00 without. --iterations is at least 10,000, --rounds at most 100, and --iterations x --rounds at most 1,000,000,000. --json prints \
            {"checks_compiled_in":true,"plain_ns":…,"checked_ns":…,"ratio":…}.
            """
    )

    @Option(help: "Lock/unlock pairs per timed round.")
    var iterations = 2_000_000

    @Option(help: "Timed rounds per loop; the fastest round is reported.")
    var rounds = 7

    @OptionGroup var output: JSONOutputOption

    /// The most lock/unlock pairs one loop may time over all its rounds: with both loops,
    /// under a minute in a release build (10-40 ns a pair), so no accepted run goes on for days.
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
                pairs per loop over all rounds, so a run stays under a minute or so.
                """)
        }
    }

    func run() throws {
        let plain = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        plain.initialize(to: pthread_mutex_t())
        var attributes = pthread_mutexattr_t()
        pthread_mutexattr_init(&attributes)
        pthread_mutexattr_settype(&attributes, Int32(PTHREAD_MUTEX_NORMAL))
        pthread_mutex_init(plain, &attributes)
        pthread_mutexattr_destroy(&attributes)
        defer {
            pthread_mutex_destroy(plain)
            plain.deallocate()
        }
        let checked = CheckedMutex("lock-cost.checked")

        // Warm-up pairs cache the chain before anything is timed.
        LockCostLoops.checkedPair(checked)
        LockCostLoops.plainPair(plain)
        let ns = try ReadCostMeasurement(iterations: iterations, rounds: rounds).nanosecondsPerRead(sides: 2) {
            side, count in
            side == 0 ? LockCostLoops.plainLoop(plain, iterations: count) : LockCostLoops.checkedLoop(checked, iterations: count)
        }
        let ratio = ns[1] / ns[0]
        if output.json {
            var line = JSONLine()
            line.add("checks_compiled_in", Lockdep.checksCompiledIn)
            line.add("plain_ns", ns[0])
            line.add("checked_ns", ns[1])
            line.add("ratio", ratio)
            line.add("iterations", iterations)
            line.add("rounds", rounds)
            print(line.text)
        } else {
            print("checks_compiled_in: \(Lockdep.checksCompiledIn)")
            print("rounds: \(rounds) x \(iterations) pairs per loop, fastest kept; the loops alternate in this process\n")
            print("lock pair                      ns/pair")
            print(Columns.left("pthread_mutex lock+unlock", 25) + ReadCostResult.fixed(ns[0], width: 14))
            print(Columns.left("CheckedMutex lock+unlock", 25) + ReadCostResult.fixed(ns[1], width: 14))
            print(Columns.left("ratio checked/plain", 25) + ReadCostResult.fixed(ratio, width: 14)
                + "   (target: <= 1.25 with checks, 1.00 without)")
        }
    }
}
