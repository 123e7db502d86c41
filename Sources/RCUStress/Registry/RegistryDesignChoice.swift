import ArgumentParser
import IOMMU

/// The `--design` of `rcu-stress registry`: one of the IOMMU registry's broken-device
/// designs with RCU readers, one of the two lock baselines, or `all` of them in turn.
enum RegistryDesignChoice: String, CaseIterable, ExpressibleByArgument {
    /// D1: RCU lookup plus a per-gdev worker (the seed's design).
    case rcu
    /// D2: per-dev_iommu worker plus a mutex (the reviewer's design); readers still use RCU.
    case devmutex
    /// D0: driver-only quarantine, no core work; readers still use RCU.
    case driverOnly = "driver-only"
    /// Baseline: design D1 with the registry guarded by one pthread rwlock.
    case rwlock
    /// Baseline: design D1 with the registry guarded by one pthread mutex.
    case mutex
    /// The ceiling: readers-only lookups with no synchronization at all (one read section
    /// spans the whole run, none per lookup, no counters). Refuses writers.
    case unsynchronized
    /// Every design above, in this order, in one process (the comparison table); with
    /// `--writers 0` the ceiling too.
    case all

    /// The designs one choice runs, in table order.
    func designs(writers: Int) -> [RegistryDesignChoice] {
        guard self == .all else { return [self] }
        return [.rcu, .rwlock, .mutex, .devmutex, .driverOnly] + (writers == 0 ? [.unsynchronized] : [])
    }

    /// The registry's broken-device design.
    var brokenDeviceDesign: BrokenDeviceDesign {
        switch self {
        case .rcu, .rwlock, .mutex, .unsynchronized, .all: .rcu
        case .devmutex: .devmutex
        case .driverOnly: .driverOnly
        }
    }

    /// How lookups are synchronised against writers.
    var readerSynchronization: ReaderSynchronization {
        switch self {
        case .rwlock: .rwlock
        case .mutex: .mutex
        case .rcu, .devmutex, .driverOnly, .unsynchronized, .all: .rcu
        }
    }

    /// Whether the call_rcu backlog is meaningful (it is sampled for every design: the
    /// baselines still free through call_rcu, since they run design D1's teardown).
    var usesRCUReaders: Bool { readerSynchronization == .rcu }
}
