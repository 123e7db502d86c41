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
    /// Every design above, in this order, in one process (the comparison table).
    case all

    /// The designs one choice runs, in table order.
    var designs: [RegistryDesignChoice] {
        self == .all ? [.rcu, .rwlock, .mutex, .devmutex, .driverOnly] : [self]
    }

    /// The registry's broken-device design.
    var brokenDeviceDesign: BrokenDeviceDesign {
        switch self {
        case .rcu, .rwlock, .mutex, .all: .rcu
        case .devmutex: .devmutex
        case .driverOnly: .driverOnly
        }
    }

    /// How lookups are synchronised against writers.
    var readerSynchronization: ReaderSynchronization {
        switch self {
        case .rwlock: .rwlock
        case .mutex: .mutex
        case .rcu, .devmutex, .driverOnly, .all: .rcu
        }
    }

    /// Whether the call_rcu backlog is meaningful (it is sampled for every design: the
    /// baselines still free through call_rcu, since they run design D1's teardown).
    var usesRCUReaders: Bool { readerSynchronization == .rcu }
}
