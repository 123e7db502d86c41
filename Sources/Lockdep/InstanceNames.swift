/// Names of lock instances, for reports that must tell two instances of one class apart.
///
/// Lockdep validates classes, not instances: two devices' mutexes declared at one site are one
/// class, and taking one while holding the other is reported as recursive locking. Whether that
/// is a real deadlock (the same instance twice, or two instances that other threads take in the
/// opposite order) or an intended nesting (a parent and its child) is the question the report
/// has to answer, so it names each instance: its address, and the name given here if any.
extension Lockdep {
    /// Names one lock instance in reports, such as `"device 3"` for one of many mutexes of the
    /// class `"device->lock"`.
    ///
    /// A recursive-locking report about two instances of one class then reads
    /// `instance "device 3" (0x…)` and `instance "device 4" (0x…)`, so the reader sees at once
    /// that it is a nesting question. The name lives as long as the lock; naming it again replaces
    /// it. Works in every build (refusal reports of a recursive acquire use it too).
    ///
    /// ```swift
    /// let parent = CheckedMutex("device->lock")
    /// Lockdep.setInstanceName("bridge", of: parent)
    /// ```
    ///
    /// A lock must be one of this module's lock types or a class: a struct of your own that
    /// conforms to ``LockdepLock`` has no object whose lifetime the name could follow, so the
    /// call is reported (``LockdepReport/Kind/assertionFailed``, in builds with checks) and no
    /// name is kept; name the lock it wraps instead.
    ///
    /// - Parameters:
    ///   - name: The instance's name.
    ///   - lock: The lock.
    ///   - fileID: The call site (default `#fileID`).
    ///   - line: The call site (default `#line`).
    ///   - function: The call site (default `#function`).
    public static func setInstanceName(_ name: String, of lock: some LockdepLock, fileID: StaticString = #fileID,
                                       line: UInt = #line, function: StaticString = #function) {
        guard let owner = InstanceNames.owner(of: lock) else {
            // Kept without an owner, the name would pass to whatever lock next lives at the address.
            #if LOCKDEP_CHECKS
            var message = "setInstanceName(_:of:) cannot name a \(type(of: lock)) of class (\(lock.lockClass.name)): "
            message += "a struct of your own has no object whose lifetime the name could follow, so no name was kept; "
            message += "name the lock it wraps"
            Engine.assertionFailure(ThreadState.current(), lock: lock, message: message,
                                    site: LockdepSite(fileID: fileID, line: line, function: function))
            #endif
            return
        }
        // The sweep's survivors are released here, after the graph lock: a lock whose last
        // reference another thread dropped meanwhile is freed here, and freeing a dynamic
        // class takes the graph lock.
        let survivors = graph.withLock { g in g.instanceNames.set(name, for: lock.lockdepInstance, owner: owner) }
        withExtendedLifetime(survivors) {}
    }

    /// The name given to `lock` with ``setInstanceName(_:of:fileID:line:function:)``, if any.
    ///
    /// - Parameter lock: The lock.
    /// - Returns: Its instance name, or `nil`.
    public static func instanceName(of lock: some LockdepLock) -> String? {
        graph.withLock { g in g.instanceNames.name(of: lock.lockdepInstance) }
    }
}

extension Lockdep {
    /// A lock given `name` at a declaration site whose class another name made first (a
    /// generic wrapper creating every lock on one line, two locks declared on one line) joins
    /// that class, as in the kernel; its own name is then kept as its instance name, so reports
    /// about it still say which lock it is.
    static func keepNameIfJoined(_ lock: some LockdepLock, name: String?, explicitClass: Bool) {
        guard !explicitClass, let name, name != lock.lockClass.name else { return }
        setInstanceName(name, of: lock)
    }
}

/// A lock whose identity lives in an object other than itself (a struct over its storage).
protocol InstanceNameOwner {
    /// The object whose lifetime is the instance's.
    var instanceNameOwner: AnyObject { get }
}

extension CheckedMutex: InstanceNameOwner { var instanceNameOwner: AnyObject { storage } }
extension CheckedSpinLock: InstanceNameOwner { var instanceNameOwner: AnyObject { storage } }
extension CheckedRWLock: InstanceNameOwner { var instanceNameOwner: AnyObject { storage } }

/// The instance names, by instance address. Each entry holds its lock's object weakly, so a
/// name dies with its lock and never passes to a new lock at the same address.
struct InstanceNames {
    struct Entry {
        let name: String
        weak var owner: AnyObject?
    }

    private var entries: [UnsafeRawPointer: Entry] = [:]
    private var liveAfterSweep = 0

    static func owner(of lock: some LockdepLock) -> AnyObject? {
        if let owned = lock as? any InstanceNameOwner { return owned.instanceNameOwner }
        return type(of: lock) is AnyObject.Type ? lock as AnyObject : nil
    }

    /// Names `instance`; returns the owners a sweep found alive, for the caller to release
    /// once it has dropped the graph lock (a weak load holds its object, and the last
    /// release of a lock must not run under the graph lock).
    mutating func set(_ name: String, for instance: UnsafeRawPointer, owner: AnyObject) -> [AnyObject] {
        entries[instance] = Entry(name: name, owner: owner)
        // Forget the names of freed locks once they could be half of the table.
        guard entries.count > 2 * max(liveAfterSweep, 32) else { return [] }
        var survivors: [AnyObject] = []
        entries = entries.filter { entry in
            guard let owner = entry.value.owner else { return false }
            survivors.append(owner)
            return true
        }
        liveAfterSweep = entries.count
        return survivors
    }

    func name(of instance: UnsafeRawPointer) -> String? {
        guard let entry = entries[instance], entry.owner != nil else { return nil }
        return entry.name
    }

    /// `"name" (0x…)`, or the address alone for an unnamed instance. The name is quoted as a
    /// Swift literal (`"a \"b\"\n"`), so one holding quotes or line breaks cannot make a
    /// report read as if it said something else.
    func describe(_ instance: UnsafeRawPointer) -> String {
        let address = "0x" + String(UInt(bitPattern: instance), radix: 16)
        return name(of: instance).map { "\(String(reflecting: $0)) (\(address))" } ?? address
    }

    var count: Int { entries.count }
}
