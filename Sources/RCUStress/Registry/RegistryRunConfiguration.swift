/// The parameters of one `rcu-stress registry` run (one design).
struct RegistryRunConfiguration: Sendable {
    var design: RegistryDesignChoice
    /// The registry's RCU flavor (memb or qsbr).
    var flavor: LiburcuFlavor
    var readers: Int
    var writers: Int
    var groups: Int
    var devicesPerGroup: Int
    var seconds: Double
    /// One lookup in this many is timed (HdrHistogram sample).
    var sampleEvery: Int
    /// One reader iteration in this many reports a fault instead of a plain lookup.
    var reportEvery: Int
    /// The registry flavor's backlog high-water mark for the run (`RCUFlavor.backlogPolicy`,
    /// low-water mark half of it); 0: unbounded; `nil`: the library's policy as it is.
    var backlogLimit: Int?

    /// Devices on the bus.
    var deviceCount: Int { groups * devicesPerGroup }
}
