/// A lock for per-thread data, checked by the validator (the kernel's `local_lock_t`).
///
/// In the kernel a local lock protects per-CPU data by disabling preemption (or migration);
/// here it protects data of the calling thread, so it takes no real lock. For Lockdep it is an
/// exclusive lock: the section is atomic (sleeping inside is reported), and it takes part in
/// lock ordering like any other lock.
///
/// As the kernel's local locks (lock type `LD_LOCK_PERCPU`), its class is skipped by the
/// irq-inversion searches: a per-thread lock cannot be contended by an interrupt of another
/// thread. Its usage is still recorded, and the class still takes part in lock ordering.
public final class LocalLock: LockdepLock, @unchecked Sendable {
    /// The class of the lock.
    public let lockClass: LockClass
    /// Where the lock was created, for a "held lock freed!" report.
    private let declared: LockdepSite

    /// Creates a local lock.
    ///
    /// - Parameters:
    ///   - name: The class name for reports; defaults to `"local_lock@File.swift:line"`.
    ///   - lockClass: An explicit class; `nil` makes (or joins) the class of this declaration site.
    ///   - fileID: The declaration site (default `#fileID`).
    ///   - line: The declaration site (default `#line`).
    public init(_ name: String? = nil, class lockClass: LockClass? = nil, fileID: StaticString = #fileID,
                line: UInt = #line) {
        let site = LockdepSite(fileID: fileID, line: line, function: "LocalLock.init")
        declared = site
        self.lockClass = lockClass ?? LockClass(name ?? "local_lock@\(site.fileName):\(line)", fileID: fileID, line: line)
        #if LOCKDEP_CHECKS
        Engine.setPerCPU(id: self.lockClass.id)
        #endif
    }

    /// A local lock destroyed while the destroying thread holds it is reported ("held lock
    /// freed!") and its entry dropped. Destroyed while another thread holds it, it goes unseen
    /// (no owner record, as in the kernel), like ``LockdepMap``.
    deinit {
        KernelLockSupport.checkFreedByHolder(lockClass, instance: lockdepInstance, declared: declared)
    }

    /// The identity of this lock.
    public var lockdepInstance: UnsafeRawPointer { UnsafeRawPointer(Unmanaged.passUnretained(self).toOpaque()) }

    /// Enters the section (`local_lock`).
    ///
    /// - Parameters:
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    public func lock(fileID: StaticString = #fileID, line: UInt = #line, function: StaticString = #function) {
        _ = KernelLockSupport.acquire(lockClass, subclass: 0, instance: lockdepInstance, mode: .write, sleeping: false,
                                      atomic: true, site: LockdepSite(fileID: fileID, line: line, function: function))
    }

    /// Leaves the section (`local_unlock`).
    ///
    /// - Parameters:
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    public func unlock(fileID: StaticString = #fileID, line: UInt = #line, function: StaticString = #function) {
        _ = KernelLockSupport.release(lockClass, instance: lockdepInstance, ownerWord: 0,
                                      site: LockdepSite(fileID: fileID, line: line, function: function))
    }

    /// Runs `body` inside the section.
    ///
    /// - Parameters:
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    ///   - body: The section (must not sleep).
    /// - Returns: What `body` returns.
    public func withLock<R, E: Error>(fileID: StaticString = #fileID, line: UInt = #line, function: StaticString = #function,
                                      _ body: () throws(E) -> R) throws(E) -> R {
        lock(fileID: fileID, line: line, function: function)
        defer { unlock(fileID: fileID, line: line, function: function) }
        return try body()
    }
}
