package import Synchronization   // `failAttach`, a package knob

/// An IOMMU translation domain (the kernel's `struct iommu_domain`).
///
/// The model keeps only what the registry's locking depends on: the type, an
/// identity, and a test knob that makes attaching a device fail.
public final class Domain: Sendable, CustomStringConvertible {
    /// The kernel's `IOMMU_DOMAIN_*` types that matter here.
    public enum Kind: String, Sendable {
        /// `IOMMU_DOMAIN_BLOCKED`: all DMA blocked (the quarantine target).
        case blocked
        /// `IOMMU_DOMAIN_IDENTITY`: passthrough.
        case identity
        /// `IOMMU_DOMAIN_DMA`: the kernel's DMA API domain (the usual default domain).
        case dma
        /// `IOMMU_DOMAIN_UNMANAGED`: a user (VFIO/iommufd) domain.
        case unmanaged
    }

    /// The domain type.
    public let type: Kind
    /// A name for logs and tests.
    public let name: String
    /// Test knob: attaching any device to this domain fails with ``IOMMUError/attachFailed``.
    package let failAttach = Atomic<Bool>(false)
    /// Whether the domain takes I/O page faults (the kernel's `domain->iopf_handler`, as SVA and
    /// iommufd fault-capable domains do): the modelled SMMUv3 driver then adds the device to its
    /// IOPF queue on attach and removes it on detach (`arm_smmu_enable_iopf` /
    /// `arm_smmu_disable_iopf`), taking `&queue->lock` then `&param->lock` under `group->mutex`.
    public let handlesIOPF: Bool

    /// Creates a domain (the model of `iommu_domain_alloc` / `iommu_paging_domain_alloc`).
    /// - Parameters:
    ///   - type: The domain type (``Kind/unmanaged`` for user domains).
    ///   - name: A name for logs.
    ///   - handlesIOPF: Whether the domain has an I/O page fault handler (`iopf_handler`).
    public init(type: Kind = .unmanaged, name: String, handlesIOPF: Bool = false) {
        self.type = type
        self.name = name
        self.handlesIOPF = handlesIOPF
    }

    public var description: String { "Domain(\(type.rawValue) \(name))" }
}
