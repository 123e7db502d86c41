internal import CLockdepThread
import Lockdep

/// One object per flavor, at ``RCUStallDetector/index(of:)``, in a buffer that lives as long
/// as the process, reached through a `CLockdepFork.h` once slot: a use is one load of the
/// slot and one of the object, no Swift once and no retain (``ForkHooks/makeOnce(_:_:)``
/// says why such values are made inside a bracket against `fork()`). `Object` is a
/// non-generic class: a first use instantiates no metadata before the bracket (`made`
/// instantiates `Unmanaged<Object>`'s inside it).
struct RCUPerFlavorObjects<Object: AnyObject> {
    let base: UnsafeMutablePointer<Unmanaged<Object>>

    /// Makes one object per flavor, retained for good.
    init(making make: (RCUFlavorKind) -> Object) {
        base = .allocate(capacity: RCUStallDetector.kinds.count)
        for (index, kind) in RCUStallDetector.kinds.enumerated() {
            (base + index).initialize(to: .passRetained(make(kind)))
        }
    }

    /// The objects published in `slot`, made there by `made` (a `static let`) the first time.
    @inline(__always)
    init(slot: Int32, made: () -> UnsafeMutableRawPointer) {
        let raw = clockdep_fork_once_value(slot) ?? ForkHooks.makeOnce(slot, made)
        base = raw.assumingMemoryBound(to: Unmanaged<Object>.self)
    }

    /// The address to publish.
    var raw: UnsafeMutableRawPointer { UnsafeMutableRawPointer(base) }

    @inline(__always)
    subscript(kind: RCUFlavorKind) -> Unmanaged<Object> { base[RCUStallDetector.index(of: kind)] }

    /// Calls `body` with each object, in flavor order.
    func forEach(_ body: (Object) -> Void) {
        for index in RCUStallDetector.kinds.indices { body(base[index].takeUnretainedValue()) }
    }
}
