import Lockdep
import Synchronization

/// Counts the Lockdep reports of `rcu-stress registry` runs instead of trapping: installs
/// `Lockdep.reportMode = .custom` once per process (only where the checks are compiled in)
/// and keeps the first few report texts to print when a run fails.
final class RegistryLockdepReports: Sendable {
    /// The process-wide counter.
    static let shared = RegistryLockdepReports()

    private let count = Atomic<Int>(0)
    private let lock = BaselineMutex()
    private nonisolated(unsafe) var texts: [String] = []
    private let installed = Atomic<Bool>(false)

    /// Reports so far in this process.
    var total: Int { count.load(ordering: .relaxed) }

    /// The first reports' texts (at most three).
    var firstTexts: [String] { lock.withLock { texts } }

    /// Routes Lockdep's reports here (idempotent; nothing to do without compiled-in checks).
    func install() {
        guard Lockdep.checksCompiledIn, !installed.exchange(true, ordering: .relaxed) else { return }
        Lockdep.reportMode = .custom { [self] report in
            count.add(1, ordering: .relaxed)
            lock.withLock { if texts.count < 3 { texts.append(report.text) } }
        }
    }
}
