#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import ArgumentParser
import CReference
import Lockdep

/// `rcu-stress lock-cost`: Lockdep's cost acceptance, "a checked mutex
/// lock/unlock pair on a cached chain <= 1.25x a plain pthread mutex pair (issue 14),
/// measured in one run; with checks compiled out, 1.00x". Beside them a C floor
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
            CheckedMutex's owner word, published wait, gates and task. The loops alternate \
            round by round and each keeps its fastest round. Prints nanoseconds per pair, \
            the ratios to the plain pair, and whether Lockdep's checks are compiled into \
            this build (release builds: only with --traits LockdepInRelease). Target: \
            checked/plain <= 1.25 with checks, ~1.00 without. --iterations is at least 10,000, --rounds at most 100, and --iterations x --rounds at most 1,000,000,000. --json prints \
            {"checks_compiled_in":true,"plain_ns":…,"checked_ns":…,"ratio":…,"floor_ns":…,"floor_ratio":…}.
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
        let floorMutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        floorMutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(floorMutex, nil)
        defer {
            pthread_mutex_destroy(floorMutex)
            floorMutex.deallocate()
        }
        let ns = try ReadCostMeasurement(iterations: iterations, rounds: rounds).nanosecondsPerRead(sides: 3) {
            side, count in
            switch side {
            case 0: LockCostLoops.plainLoop(plain, iterations: count)
            case 1: LockCostLoops.checkedLoop(checked, iterations: count)
            default: Int(creference_lockdep_floor_loop(floorMutex, 1, UInt64(count)))
            }
        }
        let ratio = ns[1] / ns[0]
        let floorRatio = ns[2] / ns[0]
        if output.json {
            var line = JSONLine()
            line.add("checks_compiled_in", Lockdep.checksCompiledIn)
            line.add("plain_ns", ns[0])
            line.add("checked_ns", ns[1])
            line.add("ratio", ratio)
            line.add("floor_ns", ns[2])
            line.add("floor_ratio", floorRatio)
            line.add("iterations", iterations)
            line.add("rounds", rounds)
            print(line.text)
        } else {
            print("checks_compiled_in: \(Lockdep.checksCompiledIn)")
            print("rounds: \(rounds) x \(iterations) pairs per loop, fastest kept; the loops alternate in this process\n")
            print("lock pair                      ns/pair")
            print(Columns.left("pthread_mutex lock+unlock", 25) + ReadCostResult.fixed(ns[0], width: 14))
            print(Columns.left("CheckedMutex lock+unlock", 25) + ReadCostResult.fixed(ns[1], width: 14))
            print(Columns.left("C floor lock+unlock", 25) + ReadCostResult.fixed(ns[2], width: 14)
                + "   (held-stack push, chain-cache probe, pop: no owner word, wait, gates or task)")
            print(Columns.left("ratio checked/plain", 25) + ReadCostResult.fixed(ratio, width: 14)
                + "   (target: <= 1.25 with checks, 1.00 without)")
            print(Columns.left("ratio floor/plain", 25) + ReadCostResult.fixed(floorRatio, width: 14))
        }
    }
}
