public import Synchronization

/// The lifecycle of a registry object (group, group device, dev_iommu), checked by
/// every accessor so a use after free is a report, not a silent read of memory
/// that ARC kept alive.
///
/// `live` → `retired` (unlinked; RCU readers may still stand on it until a grace
/// period ends) → `freed` (the point where the kernel's `kfree` would run).
/// Touching a `freed` object through a checked accessor records a
/// ``UseAfterFreeReport`` naming the object, the accessor and where it was freed.
///
/// The registry's objects (``IommuGroup``, ``GroupDevice``, `DevIommu`) inherit it, as a
/// slab object carries its own KASAN state: a probe allocates no separate lifecycle objects.
public class ObjectLifecycle: @unchecked Sendable {
    /// The states of an object.
    public enum State: UInt8, Sendable {
        /// Allocated and reachable.
        case live = 0
        /// Unlinked; freed after a grace period.
        case retired = 1
        /// Freed: any access is a use after free.
        case freed = 2
    }

    /// What the report name is made of, formatted only when a report needs it: a name
    /// formatted up front was a string allocation for each object a probe makes.
    enum Label {
        /// `Kind#number`, such as `IommuGroup#3`.
        case numbered(StaticString, Int)
        /// `Kind(owner)`, such as `GroupDevice(0000:03:0)`.
        case owned(StaticString, String)
    }

    let label: Label
    /// The object's name in reports, such as `IommuGroup#3` or `GroupDevice(0000:03:0)`.
    public final var reportName: String {
        switch label {
        case let .numbered(kind, number): "\(kind)#\(number)"
        case let .owned(kind, owner): "\(kind)(\(owner))"
        }
    }
    @usableFromInline let rawState = Atomic<UInt8>(State.live.rawValue)
    /// `rawState` while one thread writes the free site (not a public state: still usable).
    static let freeing: UInt8 = 3
    /// Written once, by the thread that won the free, before the release store of `.freed`;
    /// read after an acquire load sees `.freed`.
    private var freedAtStorage = ""
    private var freedByStorage = ""
    let log: RegistryLog

    init(_ label: Label, log: RegistryLog) {
        self.label = label
        self.log = log
    }

    /// The lifecycle every accessor checks: the object itself.
    public final var life: ObjectLifecycle { self }

    /// The cold half of an accessor's check: the lifecycle records a use after free. One
    /// function for every object and flavor, so the registry's memb and qsbr read paths call
    /// the same code (their specialisations stay identical, with no callee to pass along).
    @inline(never)
    final func reportIfFreed(_ accessor: StaticString) { check(accessor) }

    /// The current state (an object being freed right now still reads as retired).
    public final var state: State { State(rawValue: rawState.load(ordering: .acquiring)) ?? .retired }

    /// Where the object was freed (the kernel function), or `nil` while it is not freed.
    public final var freedAt: String? { state == .freed ? freedAtStorage : nil }

    final func retire() {
        rawState.store(State.retired.rawValue, ordering: .releasing)
    }

    /// Marks the object freed at `site` (the kernel's `kfree` in `site`).
    final func free(at site: String) {
        // Claim the free first, so a racing second free neither writes the site fields nor
        // overwrites where the object was really freed; only then publish `.freed`.
        var current = rawState.load(ordering: .relaxed)
        while true {
            if current == State.freed.rawValue || current == Self.freeing {
                log.warn("double free of \(reportName) at \(site)", function: site)
                return
            }
            let (claimed, found) = rawState.compareExchange(
                expected: current, desired: Self.freeing, ordering: .acquiring)
            if claimed { break }
            current = found
        }
        freedAtStorage = site
        freedByStorage = ThreadName.current
        rawState.store(State.freed.rawValue, ordering: .releasing)
    }

    /// Checks that the object is not freed; records a use-after-free report otherwise.
    /// - Returns: `true` when the object may be used.
    @inlinable
    @inline(__always)
    @discardableResult
    public final func check(_ accessor: StaticString) -> Bool {
        if rawState.load(ordering: .acquiring) != State.freed.rawValue { return true }
        reportUseAfterFree(accessor)
        return false
    }

    @usableFromInline
    final func reportUseAfterFree(_ accessor: StaticString) {
        log.useAfterFree(
            UseAfterFreeReport(
                object: reportName, accessor: "\(accessor)", freedAt: freedAtStorage, freedBy: freedByStorage,
                thread: ThreadName.current))
    }
}

/// One use after free found by a checked accessor.
public struct UseAfterFreeReport: Sendable, CustomStringConvertible {
    /// The object, such as `IommuGroup#3` or `GroupDevice(dev7)`.
    public let object: String
    /// The accessor that touched it, such as `IommuGroup.devices`.
    public let accessor: String
    /// Where it was freed (the kernel function), such as `iommu_group_release`.
    public let freedAt: String
    /// The thread that freed it.
    public let freedBy: String
    /// The thread that touched it.
    public let thread: String

    /// The report in KASAN's shape.
    public var description: String {
        """
        BUG: KASAN: slab-use-after-free in \(accessor)
        Read of \(object) by thread "\(thread)"
        Freed by thread "\(freedBy)" in \(freedAt)
        """
    }
}
