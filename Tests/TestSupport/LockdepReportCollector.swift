import Foundation
public import Lockdep

/// Collects every Lockdep report while installed (`install()`); the test restores
/// `Lockdep.reportMode = .trap` when it ends.
public final class LockdepReportCollector: Sendable {
    private let collected = Locked<[LockdepReport]>([])

    public init() {}

    public var reports: [LockdepReport] { collected.value }
    public var kinds: [LockdepReport.Kind] { reports.map(\.kind) }

    public func install() {
        Lockdep.reportMode = .custom { [self] report in collected.withLock { $0.append(report) } }
    }

    public func clear() { collected.value = [] }

    /// Waits (up to `timeout` seconds) until a report of `kind` arrives.
    public func waitFor(_ kind: LockdepReport.Kind, timeout: Double = 10) -> LockdepReport? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let report = reports.first(where: { $0.kind == kind }) { return report }
            usleep(1000)
        }
        return nil
    }
}
