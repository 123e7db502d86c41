/// The parameters of one `rcu-stress urcu` run, validated (liburcu's test_urcu globals).
struct UrcuConfiguration: Sendable {
    var flavor: FlavorChoice
    var readers: Int
    var writers: Int
    /// Seconds; liburcu takes whole seconds, this also takes fractions (for tests).
    var duration: Double
    /// `-d`: busy-wait loops between a writer's updates (liburcu's `wdelay`, `loop_sleep`).
    var writerDelay: Int = 0
    /// `-c`: busy-wait loops inside each read section (`rduration`).
    var readDuration: Int = 0
    /// `-e`: busy-wait loops between publishing and waiting for the grace period (`wduration`).
    var writeDuration: Int = 0
    /// `-b`: retire old nodes in batches of this many with one call_rcu, instead of a grace period per update.
    var batch: Int?
    /// `-a`: CPUs handed to the threads in creation order (readers first), wrapping around.
    var cpus: [Int] = []
    /// `-v`: thread start and end lines, as liburcu's `printf_verbose`.
    var verbose = false
    /// Readers time one read in this many (HdrHistogram percentiles); `nil`: no read is
    /// timed, and readers run test_urcu's loop (``UrcuReadLoop/plain(counter:control:_:)``).
    var sampleEvery: Int?

    /// The threads' total.
    var threads: Int { readers + writers }

    /// The most busy-wait loops `-c`, `-d` and `-e` take: about 0.03-0.1 s at one to three
    /// loops per nanosecond, so a run overshoots its duration by at most one read section,
    /// one writer delay and one write section (liburcu's own scripts use tens of loops).
    static let maximumLoops = 100_000_000

    /// The most `-b` accepts: a writer keeps a batch's nodes in an array of this capacity.
    static let maximumBatch = 1_000_000

    /// Threads waiting for the start spin, and readers spin until the stop: past a few
    /// dozen threads per CPU, starting them and stopping them takes longer than any run
    /// (4096 threads on 2 CPUs: over a minute for a 0.1 s run). At most 32 threads per CPU
    /// (64 at least): 64 threads start and stop within about a second on 2 CPUs.
    static var maximumThreads: Int { max(64, 32 * CPUAffinity.configuredCPUs) }
}

extension FlavorChoice {
    /// The flavors and lock baselines `urcu` runs (one at a time: no `all`).
    static let urcuChoices: [FlavorChoice] = oneFlavor + [.rwlock, .mutex]

    /// The name in the `SUMMARY` line, after liburcu's benchmark programs
    /// (`test_urcu`, `test_urcu_qsbr`, ...), prefixed so the two cannot be confused.
    var programName: String {
        switch self {
        case .rcu(.memb): "rcu-stress_urcu"
        case .rcu(let flavor): "rcu-stress_urcu_\(flavor.rawValue)"
        case .rwlock, .mutex, .all: "rcu-stress_\(name)"
        }
    }
}
