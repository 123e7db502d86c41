import ArgumentParser
import CReference
import RCU

/// `rcu-stress read-cost`: the read-side cost of one lock + dereference +
/// unlock through the Swift API, against a plain C loop over liburcu.
struct ReadCost: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "read-cost",
        abstract: "Read-side cost of the Swift RCU API against a plain C loop over liburcu, in one process.",
        discussion: """
            For each flavor, times the C loop `rcu_read_lock(); p = rcu_dereference(*slot); \
            sum += p->value; rcu_read_unlock();` (the CReference target, liburcu's inline fast \
            paths, -O2) and two Swift loops: `reader.read { s in ptr.withValue(in: s) { ... } }` \
            inside a `withReader` scope (every section checks the thread's registration, for \
            qsbr its depth and online state; `swift_ns` and the ratio) and the generic \
            `Flavor.read` outside a scope (for qsbr the thread goes online and offline around \
            each section; `generic_swift_ns`). The three alternate round by round \
            and each keeps its fastest round. Reports nanoseconds per read-side pair.

            --json prints `{"has_sys_membarrier":true}` first, then one line per flavor: \
            `{"flavor":"memb","c_ns":0.99,"swift_ns":1.01,"ratio":1.02}`, and with \
            --lock-baselines `{"baseline":"rwlock","c_ns":6.8}` lines. The human table includes the lock baselines \
            whenever --flavor is all.

            Bounds: --iterations at most 200000000, --rounds at most 100, and their product at \
            most 1400000000 (ten times the default): larger values are refused (exit status 64).
            """
    )

    @Option(help: "The flavor to measure: memb, qsbr, bp, mb, or all.")
    var flavor: FlavorChoice = .all

    @OptionGroup var output: JSONOutputOption

    @Option(help: "Read sections per timed round (default: 20000000; 2000000 for mb and the locks).")
    var iterations: Int?

    @Option(help: "Timed rounds per loop; the fastest round is reported.")
    var rounds = 7

    @Flag(help: "Also time the C loop under an uncontended pthread rwlock and mutex (JSON mode).")
    var lockBaselines = false

    /// The most read sections per round: ten times the default.
    static let maximumIterations = 200_000_000
    /// The most rounds per loop.
    static let maximumRounds = 100
    /// The most read sections per loop (iterations x rounds): ten times the default's
    /// 140,000,000, so the longest accepted run is about ten times the default one (a few
    /// minutes for --flavor all on a slow machine).
    static let maximumSectionsPerLoop = 1_400_000_000

    @Option(
        help: ArgumentHelp(
            "Run only this loop of one --flavor and print its JSON line (for scripts/check-read-instructions.sh).",
            visibility: .hidden))
    var loop: ReadCostLoop?

    func validate() throws {
        try flavor.validate(accepting: FlavorChoice.oneFlavorOrAll)
        if let iterations, !(1...Self.maximumIterations).contains(iterations) {
            throw ValidationError("--iterations must be within 1...\(Self.maximumIterations), not \(iterations).")
        }
        guard (1...Self.maximumRounds).contains(rounds) else {
            throw ValidationError("--rounds must be within 1...\(Self.maximumRounds), not \(rounds).")
        }
        let sections = (iterations ?? 20_000_000) * rounds
        guard sections <= Self.maximumSectionsPerLoop else {
            throw ValidationError(
                "--iterations x --rounds must be at most \(Self.maximumSectionsPerLoop) read sections per loop, not \(sections).")
        }
    }

    func run() throws {
        if let loop {
            return print(try ReadCostBenchmarks.singleLine(flavor, loop, measurement(fastPath: flavor != FlavorChoice.mb)))
        }
        let hasSysMembarrier = RCUMemb.hasSysMembarrier
        if output.json {
            print(#"{"has_sys_membarrier":\#(hasSysMembarrier)}"#)
        } else {
            print("hasSysMembarrier: \(hasSysMembarrier)")
            print("rounds: \(rounds) per loop, fastest kept; C and Swift alternate in this process\n")
            print(ReadCostResult.header)
        }
        for choice in flavor.flavors {
            report(try measure(choice))
        }
        if output.json ? lockBaselines : (lockBaselines || flavor == .all) {
            for result in try ReadCostBenchmarks.lockBaselines(measurement(fastPath: false)) {
                report(result)
            }
        }
    }

    func measure(_ choice: LiburcuFlavor) throws -> ReadCostResult {
        switch choice {
        case .memb: try ReadCostBenchmarks.compare(RCUMemb.self, cLoop: creference_memb_read_loop, measurement(fastPath: true))
        case .qsbr: try ReadCostBenchmarks.compare(RCUQSBR.self, cLoop: creference_qsbr_read_loop, measurement(fastPath: true))
        case .bp: try ReadCostBenchmarks.compare(RCUBulletproof.self, cLoop: creference_bp_read_loop, measurement(fastPath: true))
        case .mb: try ReadCostBenchmarks.compare(RCUMemoryBarrier.self, cLoop: creference_mb_read_loop, measurement(fastPath: false))
        }
    }

    /// The rounds to time; flavors with a fence (mb) and the locks get fewer default iterations.
    func measurement(fastPath: Bool) -> ReadCostMeasurement {
        ReadCostMeasurement(iterations: iterations ?? (fastPath ? 20_000_000 : 2_000_000), rounds: rounds)
    }

    func report(_ result: ReadCostResult) {
        if output.json {
            print(result.jsonLine)
        } else {
            result.tableRows.forEach { print($0) }
        }
    }
}
