/// A lock class: all the locks that are logically "the same lock".
///
/// Lockdep validates classes, not instances. Every instance of a class shares one set of
/// dependencies, usage bits and statistics, so an ordering seen on one pair of instances is
/// checked against orderings seen on any other instances of the same classes, by any thread,
/// at any time.
///
/// A class is identified by its *key*. The default key is the declaration site of the
/// `LockClass` (its `#fileID:#line`), so a `static let` class, or a lock created at one line
/// of code, gives one class however many instances exist. Pass an explicit `key` to merge
/// classes declared at different sites, or use ``unique(_:validates:fileID:line:)`` for a class that is never shared
/// (tests).
///
/// A subsystem that creates classes per instance (one set per registry, per device, per
/// connection) uses ``dynamic(_:validates:fileID:line:)``: like the kernel's
/// `lockdep_register_key` / `lockdep_unregister_key`, such a class is freed when its last
/// reference goes (the owner and every lock created with the class), with its dependencies and
/// validated chains, so creating and destroying owners forever never fills
/// ``LockdepLimits/maxClasses``.
///
/// ```swift
/// static let groupMutex = LockClass("group->mutex")
/// let mutex = CheckedMutex(class: Self.groupMutex)
/// ```
///
/// - Note: Subclasses (`lock(subclass: 1)`, up to 7) act as distinct classes with the name
///   suffix `/1`, so one class can knowingly nest inside itself.
public final class LockClass: Sendable, CustomStringConvertible {
    /// The name printed in reports, such as `"group->mutex"`: for a `LockClass` that joined an
    /// existing class (the same key), that class's name, not the one passed to it.
    public let name: String
    /// The key that identifies the class.
    public let key: String
    /// Whether the class takes part in validation (`false` for a "no validate" class).
    public let validates: Bool
    /// Whether the class was created by ``dynamic(_:validates:fileID:line:)`` and is freed with its last reference.
    public let isDynamic: Bool
    /// The internal class number (stable while the class exists; a freed dynamic class's number is reused).
    @usableFromInline let id: UInt32

    /// Creates (or joins) a lock class.
    ///
    /// - Parameters:
    ///   - name: The name printed in reports, if this creates the class (joining one keeps
    ///     its name, as the kernel names a class after its first registration).
    ///   - key: The identity of the class. `nil` (the default) uses the declaration site, so
    ///     one line of code declares one class.
    ///   - validates: Pass `false` for a "no validate" class: its locks are tracked as held
    ///     (assertions work) but create no dependencies and no reports.
    ///   - fileID: The declaration file (default `#fileID`).
    ///   - line: The declaration line (default `#line`).
    public init(_ name: String, key: String? = nil, validates: Bool = true,
                fileID: StaticString = #fileID, line: UInt = #line) {
        self.validates = validates
        let key = key ?? "\(fileID):\(line)"
        self.key = key
        self.isDynamic = false
        (self.id, self.name) = Engine.registerClassNamed(
            name: name, key: key, validates: validates,
            site: LockdepSite(fileID: fileID, line: line, function: "LockClass.init"))
    }

    private init(dynamic name: String, validates: Bool, fileID: StaticString, line: UInt) {
        self.name = name
        self.validates = validates
        self.isDynamic = true
        let site = LockdepSite(fileID: fileID, line: line, function: "LockClass.dynamic")
        let key = "\(name)#dynamic@\(fileID):\(line)"
        self.key = key
        self.id = Engine.registerClass(name: name, key: key, validates: validates, dynamic: true, site: site)
    }

    deinit {
        if isDynamic { Engine.unregisterClass(id: id, key: key) }
    }

    /// Creates a class with a dynamic key, freed when the returned object goes: the kernel's
    /// `lockdep_register_key` for a key embedded in a dynamically allocated object.
    ///
    /// Every lock created with the class holds it, so the class lives exactly as long as its
    /// owner and its locks. When the last reference goes, the class is unregistered (the
    /// kernel's `lockdep_unregister_key`): its dependencies in both directions, every
    /// validated lock chain that holds it and its statistics are removed, and its number is
    /// reused by a later class after every thread's chain cache has been invalidated. The
    /// class still counts against ``LockdepLimits/maxClasses`` while it exists, so a leak of
    /// owners is still reported as `MAX_LOCKDEP_KEYS`.
    ///
    /// ```swift
    /// final class Connection {
    ///     let stateClass = LockClass.dynamic("conn->state")
    ///     lazy var state = CheckedMutex(class: stateClass)
    /// }
    /// ```
    ///
    /// - Parameters:
    ///   - name: The name printed in reports.
    ///   - validates: Pass `false` for a "no validate" class.
    ///   - fileID: The declaration site (default `#fileID`).
    ///   - line: The declaration site (default `#line`).
    /// - Returns: A fresh class that no other `LockClass` can join.
    public static func dynamic(_ name: String, validates: Bool = true, fileID: StaticString = #fileID,
                               line: UInt = #line) -> LockClass {
        LockClass(dynamic: name, validates: validates, fileID: fileID, line: line)
    }

    /// Creates a class that no other `LockClass` can join.
    ///
    /// - Parameters:
    ///   - name: The name printed in reports.
    ///   - validates: Pass `false` for a "no validate" class.
    ///   - fileID: The declaration site (default `#fileID`).
    ///   - line: The declaration site (default `#line`).
    /// - Returns: A fresh class.
    public static func unique(_ name: String, validates: Bool = true, fileID: StaticString = #fileID,
                              line: UInt = #line) -> LockClass {
        LockClass(name, key: "\(name)#unique\(Engine.nextUniqueKey())", validates: validates, fileID: fileID, line: line)
    }

    /// The class name.
    public var description: String { name }
}
