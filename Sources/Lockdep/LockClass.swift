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
/// (tests, dynamically created subsystems).
///
/// ```swift
/// static let groupMutex = LockClass("group->mutex")
/// let mutex = CheckedMutex(class: Self.groupMutex)
/// ```
///
/// - Note: Subclasses (`lock(subclass: 1)`, up to 7) act as distinct classes with the name
///   suffix `/1`, so one class can knowingly nest inside itself.
public final class LockClass: Sendable, CustomStringConvertible {
    /// The name printed in reports, such as `"group->mutex"`.
    public let name: String
    /// The key that identifies the class.
    public let key: String
    /// Whether the class takes part in validation (`false` for a "no validate" class).
    public let validates: Bool
    /// The internal class number (stable for the life of the process).
    @usableFromInline let id: UInt32

    /// Creates (or joins) a lock class.
    ///
    /// - Parameters:
    ///   - name: The name printed in reports.
    ///   - key: The identity of the class. `nil` (the default) uses the declaration site, so
    ///     one line of code declares one class.
    ///   - validates: Pass `false` for a "no validate" class: its locks are tracked as held
    ///     (assertions work) but create no dependencies and no reports.
    ///   - fileID: The declaration file (default `#fileID`).
    ///   - line: The declaration line (default `#line`).
    public init(_ name: String, key: String? = nil, validates: Bool = true,
                fileID: StaticString = #fileID, line: UInt = #line) {
        self.name = name
        self.validates = validates
        let key = key ?? "\(fileID):\(line)"
        self.key = key
        self.id = Engine.registerClass(name: name, key: key, validates: validates,
                                       site: LockdepSite(fileID: fileID, line: line, function: "LockClass.init"))
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
