import Lockdep
public import Synchronization

/// Named pause points for deterministic interleavings (spec section 7).
///
/// The registry calls ``pause(_:)`` at fixed places of its code paths
/// (``HookPoint``). A test arms a point, starts the thread that will reach it,
/// waits until the thread is parked there, runs the other side of the race, and
/// releases it. In a test, with `dev` probed into `registry` (`Thread` and
/// `DispatchSemaphore` are Foundation's):
///
/// ```swift
/// let parked = registry.hooks.arm(.isrAfterDeref)
/// let isrDone = DispatchSemaphore(value: 0)
/// Thread {                                             // an "ISR"
///     Lockdep.withContext(.hardirq) { _ = registry.reportBroken(dev) }   // parks after loading dev->iommu_group
///     isrDone.signal()
/// }.start()
/// XCTAssertTrue(parked.waitUntilReached())
/// try registry.releaseDevice(dev)                      // the race partner runs now
/// parked.release()
/// isrDone.wait()
/// ```
///
/// The IOMMU article's "Reproducing the races" has a recipe for each race (S1, S2, S3, S5).
///
/// Unarmed, a pause point costs one relaxed atomic load.
public final class Hooks: @unchecked Sendable {
    /// Number of armed points; 0 keeps ``pause(_:)`` on its one-load fast path.
    @usableFromInline let armedCount = Atomic<Int>(0)
    private let lock = InternalLock()
    private var points: [HookPoint: PausePoint] = [:]

    init() {}

    /// Parks the calling thread if `point` is armed, until the test releases it.
    @inlinable
    @inline(__always)
    public func pause(_ point: HookPoint) {
        if armedCount.load(ordering: .relaxed) != 0 { _pauseSlow(point) }
    }

    /// Arms `point`: the next `count` threads that reach it park there.
    /// - Returns: The handle to wait for and release the parked threads.
    @discardableResult
    public func arm(_ point: HookPoint, count: Int = 1) -> PausePoint {
        let handle = PausePoint(point: point, hooks: self, count: count)
        lock.withLock { points[point] = handle }
        armedCount.add(1, ordering: .relaxed)
        return handle
    }

    @usableFromInline
    func _pauseSlow(_ point: HookPoint) {
        let handle: PausePoint? = lock.withLock { points[point] }
        handle?.park()
    }

    func disarm(_ handle: PausePoint) {
        let removed: Bool = lock.withLock {
            guard points[handle.point] === handle else { return false }
            points[handle.point] = nil
            return true
        }
        if removed { armedCount.subtract(1, ordering: .relaxed) }
    }
}

/// An armed pause point: threads that reach it park until ``release()``.
public final class PausePoint: @unchecked Sendable {
    /// The point.
    public let point: HookPoint
    private unowned let hooks: Hooks
    private let lock = InternalLock()
    /// Broadcast when a thread parks here and when the point is released.
    private let changed = InternalCondition()
    private var remaining: Int
    private var reached = 0
    private var released = false

    init(point: HookPoint, hooks: Hooks, count: Int) {
        self.point = point
        self.hooks = hooks
        self.remaining = count
    }

    func park() {
        lock.withLock {
            guard remaining > 0, !released else { return }
            remaining -= 1
            reached += 1
            changed.broadcast()
            while !released { lock.wait(for: changed) }
        }
    }

    /// Waits until `count` threads (1 by default) are parked here.
    /// - Parameters:
    ///   - count: The number of threads to wait for.
    ///   - timeout: How long to wait at most (a test never hangs).
    /// - Returns: Whether they arrived in time.
    public func waitUntilReached(count: Int = 1, timeout: Duration = .seconds(10)) -> Bool {
        let deadline = InternalCondition.Deadline.after(timeout)
        return lock.withLock {
            while reached < count {
                if !lock.wait(for: changed, until: deadline) { return reached >= count }
            }
            return true
        }
    }

    /// How many threads have reached the point so far.
    public var reachedCount: Int { lock.withLock { reached } }

    /// Releases every parked thread and disarms the point (later arrivals do not park).
    public func release() {
        hooks.disarm(self)
        lock.withLock {
            released = true
            changed.broadcast()
        }
    }
}

/// The places where the registry can be paused (``Hooks``).
public struct HookPoint: RawRepresentable, Hashable, Sendable, ExpressibleByStringLiteral {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public init(stringLiteral value: String) { self.rawValue = value }

    /// ISR path: `dev->iommu_group` was loaded (inside the read section, group not yet touched).
    public static let isrAfterDeref: HookPoint = "isr.afterDeref"
    /// ISR path: standing on a node of `group->devices`, before touching its `group_device`.
    public static let isrVisitNode: HookPoint = "isr.visitNode"
    /// ISR path (D1): the `group_device` was found on the list and is not marked removed;
    /// its work is about to be queued.
    public static let isrFoundGdev: HookPoint = "isr.foundGdev"
    /// Broken worker: started, before touching the group device or taking any lock.
    public static let workerStart: HookPoint = "worker.start"
    /// Broken worker: about to take `group->mutex`.
    public static let workerBeforeGroupMutex: HookPoint = "worker.beforeGroupMutex"
    /// Remove path: the gdev is unlinked and `group->mutex` still held, before the
    /// work is cancelled (under the mutex in the S4 bug, after the unlock when fixed).
    public static let removeBeforeCancel: HookPoint = "remove.beforeCancel"
    /// Remove path: after `group->mutex` was released, before the gdev is freed.
    public static let removeAfterUnlock: HookPoint = "remove.afterUnlock"
    /// Probe path: `iommu_probe_device_lock` dropped around the bus's `dma_configure()`
    /// (firmware-described devices without a bound driver).
    public static let probeInDmaConfigure: HookPoint = "probe.inDmaConfigure"
    /// Probe path: the driver's `probe_device` published its per-device state, before
    /// `device_group()` and the publication of `dev->iommu_group`.
    public static let probeAfterProbeDevice: HookPoint = "probe.afterProbeDevice"
    /// Broken worker (D1): about to read `dev->iommu_group`.
    public static let workerBeforeGroupLoad: HookPoint = "worker.beforeGroupLoad"
    /// Probe path: `dev->iommu_group` was published, before the gdev is on the list.
    public static let probeAfterPublish: HookPoint = "probe.afterPublish"
}
