import ArgumentParser
import RCU

/// `rcu-stress torture`: rcutorture's regression test of a flavor's grace periods.
struct Torture: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "torture",
        abstract: "rcutorture's method: readers record the age of the element they hold; any age past 1 means RCU is broken.",
        discussion: """
            A writer publishes elements from a pool and, after each grace period, ages every \
            retired one; at age 10 (the pipe length) an element is freed and reused. Readers \
            record the age they observe at the end of each read section (the "Reader Pipe" \
            histogram, ages 0...10) and count freed elements they dereference ("mberror"). \
            Prints the histogram, the free-block circulation and a verdict (SUCCESS or \
            FAILURE); exits with status 1 on failure. --flavor all runs each flavor in turn. \
            --json prints one JSON object per flavor.
            """
    )

    @Option(help: "The flavor to torture: memb, qsbr, bp, mb, or all.")
    var flavor: FlavorChoice

    @Option(help: "Seconds to run each flavor; fractions allowed.")
    var duration: Double

    @Option(help: "Reader threads.")
    var readers = 2

    @Flag(help: "Print one JSON object per flavor instead of the report.")
    var json = false

    /// Deliberately broken RCU: the writer frees without waiting for grace periods (the run must fail).
    @Flag(help: .hidden)
    var brokenWriter = false

    func validate() throws {
        guard duration.isFinite, duration > 0 else {
            throw ValidationError("--duration must be a positive number of seconds, not \(duration).")
        }
        guard duration <= 86_400 else { throw ValidationError("--duration must be at most one day (86400 s).") }
        guard readers >= 1 else { throw ValidationError("--readers must be 1 or more, not \(readers).") }
        guard readers <= Urcu.maxThreads else {
            throw ValidationError("--readers must be at most \(Urcu.maxThreads), not \(readers).")
        }
    }

    func run() throws {
        var failed = false
        for choice in flavor.flavors {
            let result: TortureResult =
                switch choice {
                case .memb: TortureRun<RCUMemb>.run(seconds: duration, readers: readers, brokenWriter: brokenWriter)
                case .qsbr: TortureRun<RCUQSBR>.run(seconds: duration, readers: readers, brokenWriter: brokenWriter)
                case .bp: TortureRun<RCUBulletproof>.run(seconds: duration, readers: readers, brokenWriter: brokenWriter)
                case .mb, .all: TortureRun<RCUMemoryBarrier>.run(seconds: duration, readers: readers, brokenWriter: brokenWriter)
                }
            if json {
                print(result.jsonLine)
            } else {
                result.lines.forEach { print($0) }
            }
            failed = failed || !result.passed
        }
        if failed { throw ExitCode.failure }
    }
}
