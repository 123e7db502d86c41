/// The errors the registry's operations return: the kernel's negative errno values.
///
/// Every public operation that the kernel lets fail throws one of these instead of
/// crashing or corrupting the registry, including on bad input (releasing a device
/// that was never probed, claiming ownership twice with different owners, ...).
public enum IOMMUError: Error, Sendable, Equatable, CustomStringConvertible {
    /// `-EBUSY`: the group is owned, in recovery, or attached to a foreign domain.
    case busy
    /// `-EPERM`: the group is already owned by someone else.
    case permissionDenied
    /// `-ENODEV`: the device has no IOMMU group (never probed, or already released).
    case noDevice
    /// `-EPROBE_DEFER`: the group has no default domain yet.
    case probeDefer
    /// `-EINVAL`: an argument is inconsistent (wrong number of devices, unknown domain).
    case invalidArgument
    /// `-ENOMEM`-like failure injected by a test (a domain whose attach fails).
    case attachFailed
    /// The operation would deadlock (the model refuses to hang; Lockdep has reported why).
    case wouldDeadlock

    /// The kernel's errno value (negative).
    public var errno: Int32 {
        switch self {
        case .busy: -16
        case .permissionDenied: -1
        case .noDevice: -19
        case .probeDefer: -517
        case .invalidArgument: -22
        case .attachFailed: -12
        case .wouldDeadlock: -35
        }
    }

    /// The kernel's name of the error, such as `-EBUSY`.
    public var description: String {
        switch self {
        case .busy: "-EBUSY"
        case .permissionDenied: "-EPERM"
        case .noDevice: "-ENODEV"
        case .probeDefer: "-EPROBE_DEFER"
        case .invalidArgument: "-EINVAL"
        case .attachFailed: "-ENOMEM"
        case .wouldDeadlock: "-EDEADLK"
        }
    }
}
