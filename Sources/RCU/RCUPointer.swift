public import CURCUCommon

/// A published reference to an object that readers load inside read sections
/// while writers replace it: the `__rcu` pointer of the Linux kernel.
///
/// Every store publishes with release semantics (`rcu_assign_pointer`) and
/// hands the previous object to deferred reclamation, so a plain, unpublished
/// store cannot be written. Loads take the ``RCUReadSection`` that
/// ``RCUFlavor/read(fileID:line:_:)`` lends, so a load outside a section does not compile.
///
/// ```swift
/// final class Config: Sendable { let limit: Int; init(limit: Int) { self.limit = limit } }
/// let config = RCUPointer<Config, RCUMemb>(Config(limit: 10))
///
/// let limit = RCUMemb.read { section in
///     config.withValue(in: section) { $0.limit } ?? 0    // no ARC traffic
/// }
/// config.replace(with: Config(limit: 20))                // old one freed after a grace period
/// ```
///
/// The pointer owns one reference to the current object. It is noncopyable:
/// keep it in a `let` of a class or a global, as you would a `Mutex`.
public struct RCUPointer<Value: AnyObject & Sendable, Flavor: RCUFlavor>: ~Copyable {
    /// The published slot; heap-allocated so its address is stable.
    @usableFromInline
    let slot: UnsafeMutablePointer<UnsafeMutableRawPointer?>

    /// Creates a pointer that publishes `initial`.
    public init(_ initial: consuming Value? = nil) {
        slot = .allocate(capacity: 1)
        slot.initialize(to: initial.map { Unmanaged.passRetained($0).toOpaque() })
    }

    deinit {
        // Readers that loaded the object before its owner went away may still use it.
        if let current = slot.pointee {
            Flavor.throttledCall(RCUCallbacks.releaseObject, current, call: "RCUPointer.deinit")
        }
        slot.deallocate()
    }

    // MARK: Readers

    /// Calls `body` with the published object, borrowed: no retain, no release.
    ///
    /// The object is valid until `body` returns and must not escape it
    /// (copy out what you need, or use ``load(in:)`` for a strong reference).
    ///
    /// `body` gets a non-optional reference on purpose: binding an optional
    /// one with `if let` makes Swift retain and release the object around
    /// any call it cannot see into, and on an object every reader shares
    /// that refcount traffic costs more than the whole read section.
    /// - Parameters:
    ///   - section: The read section this load happens in.
    ///   - body: Gets the object; not called when none is published.
    /// - Returns: What `body` returns, or `nil` when no object is published.
    /// - Complexity: One dependency-ordered load (`rcu_dereference`).
    @inlinable
    @inline(__always)
    public func withValue<Result>(
        in section: borrowing RCUReadSection<Flavor>, _ body: (Value) throws -> Result
    ) rethrows -> Result? {
        guard let raw = curcu_pointer_load(slot) else { return nil }
        return try Unmanaged<Value>.fromOpaque(raw)._withUnsafeGuaranteedRef { try body($0) }
    }

    /// Whether no object is published, as seen in `section` (the kernel's
    /// `rcu_access_pointer(p) == NULL`): a check that takes no reference.
    @inlinable
    public func isEmpty(in section: borrowing RCUReadSection<Flavor>) -> Bool {
        curcu_pointer_load(slot) == nil
    }

    /// Returns a strong reference to the published object.
    ///
    /// The retain happens inside the section, so the object stays alive for as
    /// long as the caller holds it, after the section too. It costs an atomic
    /// increment and decrement on a shared object: prefer
    /// ``withValue(in:_:)`` on hot paths.
    @inlinable
    public func load(in section: borrowing RCUReadSection<Flavor>) -> Value? {
        guard let raw = curcu_pointer_load(slot) else { return nil }
        return Unmanaged<Value>.fromOpaque(raw).takeUnretainedValue()
    }

    /// Calls `body` with the published object, for an updater that serialises
    /// all updates of this pointer with its own lock (the kernel's
    /// `rcu_dereference_protected`).
    ///
    /// Safe without that lock too: the object is retained inside a read section
    /// and released after `body`, so a concurrent `replace` cannot reclaim it
    /// under the caller, and `body` may block or wait for grace periods.
    /// - Returns: What `body` returns, or `nil` when no object is published.
    /// - Complexity: A read section, a retain and a release.
    @inlinable
    public func withProtectedValue<Result>(_ body: (Value) throws -> Result) rethrows -> Result? {
        guard let value = protectedValue else { return nil }
        return try body(value)
    }

    /// A strong reference to the published object, for an updater; see
    /// ``withProtectedValue(_:)``. Retained inside a read section, so it is valid
    /// for as long as the caller holds it, whatever other writers do.
    @inlinable
    public var protectedValue: Value? {
        Flavor.read { section in load(in: section) }
    }

    // MARK: Writers

    /// Publishes `new` and retires the previous object: it is released after
    /// a grace period, once no reader can still hold it.
    ///
    /// The previous object is retired as ``RCUFlavor/retire(_:)-(AnyObjectSendable)``
    /// retires one: past the flavor's ``RCUFlavor/backlogPolicy`` high-water mark the caller
    /// is throttled, except where it may not wait (inside a read section, in a callback).
    /// - Complexity: O(1): an atomic exchange and a call_rcu enqueue.
    @inlinable
    public func replace(with new: consuming Value?) {
        if let old = publish(new) {
            Flavor.throttledCall(RCUCallbacks.releaseObject, old, call: "replace(with:)")
        }
    }

    /// Publishes `new` and returns the previous object, which is also retired:
    /// it lives while the caller holds it and at least until a grace period ends.
    @inlinable
    public func exchange(_ new: consuming Value?) -> Value? {
        guard let old = publish(new) else { return nil }
        let previous = Unmanaged<Value>.fromOpaque(old).takeUnretainedValue()
        Flavor.throttledCall(RCUCallbacks.releaseObject, old, call: "exchange(_:)")
        return previous
    }

    /// Publishes `desired` only if the published object is `expected` (by identity).
    ///
    /// On success the previous object is retired (and the caller throttled) as in ``replace(with:)``.
    /// - Returns: Whether it was exchanged, and the object that was published
    ///   (`expected` on success).
    public func compareExchange(
        expected: Value?, desired: consuming Value?
    ) -> (exchanged: Bool, original: Value?) {
        let expectedRaw = expected.map { Unmanaged.passUnretained($0).toOpaque() }
        let desiredRaw = desired.map { Unmanaged.passRetained($0).toOpaque() }
        // A read section keeps a concurrently replaced `found` alive while it is retained.
        let (found, current) = Flavor.read { _ -> (UnsafeMutableRawPointer?, Value?) in
            let found = curcu_pointer_compare_exchange(slot, expectedRaw, desiredRaw)
            guard found != expectedRaw else { return (found, nil) }
            return (found, found.map { Unmanaged<Value>.fromOpaque($0).takeUnretainedValue() })
        }
        guard found == expectedRaw else {
            if let desiredRaw { Unmanaged<Value>.fromOpaque(desiredRaw).release() }
            return (false, current)
        }
        // Retired after the section, where a throttled caller may wait: the slot's reference
        // was unpublished before the call, so the call's grace period covers every reader.
        if let found { Flavor.throttledCall(RCUCallbacks.releaseObject, found, call: "compareExchange(expected:desired:)") }
        return (true, expected)
    }

    /// Publishes `new`, waits for a grace period, then releases the previous
    /// object on the calling thread: the synchronous, `synchronize_rcu` style
    /// of update. Slower than ``replace(with:)`` but with no backlog.
    ///
    /// Where ``RCUFlavor/synchronize(fileID:line:)-1jddf`` is refused (inside any read
    /// section, on a call_rcu worker, in a child of an unsafe fork) the whole call is
    /// refused with an ``RCUMisuse``: nothing is published and the old object stays.
    @inlinable  // specialised, its publish is an exchange: unspecialised, 600 instructions a write
    public func replaceAndSynchronize(with new: consuming Value?, fileID: StaticString = #fileID, line: UInt = #line) {
        guard Flavor.mayWaitForGracePeriod(
            "replaceAndSynchronize(with:)", inReadSection: .synchronizeInReadSection,
            inCallback: .synchronizeInCallback, fileID: fileID, line: line)
        else { return }
        // Consumed: the slot takes the caller's reference instead of a retained copy.
        guard let old = publish(consume new) else { return }
        Flavor.synchronizeAllowed()
        Unmanaged<AnyObject>.fromOpaque(old).release()
    }

    /// Stores `new` with release semantics and returns the previous raw reference (+1).
    @inlinable
    func publish(_ new: consuming Value?) -> UnsafeMutableRawPointer? {
        curcu_pointer_exchange(slot, new.map { Unmanaged.passRetained($0).toOpaque() })
    }
}

extension RCUPointer: @unchecked Sendable {}
