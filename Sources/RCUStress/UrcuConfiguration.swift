/// The parameters of one `rcu-stress urcu` run, validated (liburcu's test_urcu globals).
struct UrcuConfiguration: Sendable {
    var flavor: StressFlavorChoice
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
    /// Readers time one read in this many (HdrHistogram percentiles).
    var sampleEvery = 1024

    /// The threads' total.
    var threads: Int { readers + writers }
}
