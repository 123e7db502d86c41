import Lockdep
public import Synchronization

/// The registry's observable output: the kernel's WARNs (an event log), use-after-free
/// reports, invariant violations, and counters that tests and the stress tool read.
///
/// Thread-safe. Reports are kept (up to ``capacity`` of each kind); counters count all.
public final class RegistryLog: @unchecked Sendable {
    /// A recorded `WARN()` / `WARN_ON()`.
    public struct Warning: Sendable, CustomStringConvertible {
        /// What was warned about.
        public let message: String
        /// The kernel function that warned.
        public let function: String
        /// The thread that warned.
        public let thread: String
        public var description: String { "WARNING: \(function): \(message) [thread \"\(thread)\"]" }
    }

    /// How many reports of each kind are kept.
    public let capacity = 256

    private let lock = InternalLock()
    private var _warnings: [Warning] = []
    private var _useAfterFree: [UseAfterFreeReport] = []
    private var _violations: [InvariantViolation] = []
    private let warningCount = Atomic<Int>(0)
    private let uafCount = Atomic<Int>(0)
    private let violationCount = Atomic<Int>(0)
    /// Optional sink called for every use-after-free report (the stress tool prints them).
    private var onUseAfterFree: (@Sendable (UseAfterFreeReport) -> Void)?

    init() {}

    /// The recorded WARNs, oldest first.
    public var warnings: [Warning] { lock.withLock { _warnings } }
    /// The recorded use-after-free reports, oldest first.
    public var useAfterFreeReports: [UseAfterFreeReport] { lock.withLock { _useAfterFree } }
    /// The invariant violations found by ``Registry/checkInvariants(quiescent:)`` and by the
    /// registry's own checks (I1, I3 on the ISR path; I9 at free time), oldest first.
    public var invariantViolations: [InvariantViolation] { lock.withLock { _violations } }
    /// Number of WARNs so far.
    public var warningTotal: Int { warningCount.load(ordering: .relaxed) }
    /// Number of uses after free so far.
    public var useAfterFreeTotal: Int { uafCount.load(ordering: .relaxed) }
    /// Number of invariant violations so far.
    public var invariantViolationTotal: Int { violationCount.load(ordering: .relaxed) }

    /// A function called for each use-after-free report, in addition to recording it
    /// (`nil`, the default, only records).
    public var useAfterFreeHandler: (@Sendable (UseAfterFreeReport) -> Void)? {
        get { lock.withLock { onUseAfterFree } }
        set { lock.withLock { onUseAfterFree = newValue } }
    }

    /// Forgets the recorded reports (counters keep counting).
    public func clear() {
        lock.withLock {
            _warnings.removeAll()
            _useAfterFree.removeAll()
            _violations.removeAll()
        }
    }

    func warn(_ message: String, function: String) {
        warningCount.add(1, ordering: .relaxed)
        let w = Warning(message: message, function: function, thread: ThreadName.current)
        lock.withLock { if _warnings.count < capacity { _warnings.append(w) } }
    }

    func useAfterFree(_ report: UseAfterFreeReport) {
        uafCount.add(1, ordering: .relaxed)
        let handler: (@Sendable (UseAfterFreeReport) -> Void)? = lock.withLock {
            if _useAfterFree.count < capacity { _useAfterFree.append(report) }
            return onUseAfterFree
        }
        handler?(report)
    }

    func violation(_ v: InvariantViolation) {
        violationCount.add(1, ordering: .relaxed)
        lock.withLock { if _violations.count < capacity { _violations.append(v) } }
    }
}

/// The registry's counters (all relaxed atomics; read them at any time).
public final class RegistryCounters: Sendable {
    /// ISR-side lookups started (``Registry/lookup(_:)`` and ``Registry/reportBroken(_:)``).
    public let lookups = Atomic<Int>(0)
    /// Lookups that found the device's group device.
    public let lookupHits = Atomic<Int>(0)
    /// Broken reports made.
    public let brokenReports = Atomic<Int>(0)
    /// Broken reports that queued a worker.
    public let brokenQueued = Atomic<Int>(0)
    /// Broken reports dropped because the device was gone (not found, removed, or the work disabled).
    public let brokenDropped = Atomic<Int>(0)
    /// Worker runs that quarantined a device (moved it to the blocking domain).
    public let quarantined = Atomic<Int>(0)
    /// Worker runs that found the device already removed and did nothing.
    public let workerRevalidationFailed = Atomic<Int>(0)
    /// Broken workers (D1) that found `dev->iommu_group` already NULL (`iommu_deinit_device` ran
    /// before the work was disabled) and returned without taking any lock.
    public let workerFoundNoGroup = Atomic<Int>(0)
    /// Probes that returned `-ENODEV` because, while the probe lock was dropped around
    /// `dma_configure()`, another probe instance finished (or failed) the job.
    public let probesFinishedElsewhere = Atomic<Int>(0)
    /// Probes run from `dma_configure()` that failed (the bus logs and carries on).
    public let nestedProbeFailures = Atomic<Int>(0)
    /// Devices probed successfully.
    public let probes = Atomic<Int>(0)
    /// Devices released.
    public let releases = Atomic<Int>(0)
    /// Groups allocated and groups freed.
    public let groupsAllocated = Atomic<Int>(0)
    public let groupsFreed = Atomic<Int>(0)
    /// Group devices allocated and freed.
    public let groupDevicesAllocated = Atomic<Int>(0)
    public let groupDevicesFreed = Atomic<Int>(0)

    init() {}
}

/// The calling thread's name, as Lockdep prints it.
enum ThreadName {
    static var current: String { Lockdep.currentThreadName }
}
