import ArgumentParser

/// The `--flavor` of `rcu-stress urcu`: one of liburcu's four flavors, or a
/// pthread lock around the same pointer as a baseline (liburcu's test_rwlock
/// and test_mutex).
enum StressFlavorChoice: String, CaseIterable, ExpressibleByArgument {
    case memb, qsbr, bp, mb, rwlock, mutex

    /// Whether this is an RCU flavor (grace periods, call_rcu) rather than a lock baseline.
    var isRCU: Bool {
        switch self {
        case .memb, .qsbr, .bp, .mb: true
        case .rwlock, .mutex: false
        }
    }

    /// The name in the `SUMMARY` line, after liburcu's benchmark programs
    /// (`test_urcu`, `test_urcu_qsbr`, ...), prefixed so the two cannot be confused.
    var programName: String {
        switch self {
        case .memb: "rcu-stress_urcu"
        case .qsbr: "rcu-stress_urcu_qsbr"
        case .bp: "rcu-stress_urcu_bp"
        case .mb: "rcu-stress_urcu_mb"
        case .rwlock: "rcu-stress_rwlock"
        case .mutex: "rcu-stress_mutex"
        }
    }
}
