/// A source location captured at a lock operation: the file, line and function of the caller.
///
/// Every checked lock operation takes `#fileID`, `#line` and `#function` default arguments and
/// packs them into a `LockdepSite`: three words (two pointers to the static literal text and the
/// line), so capturing a site never allocates and is passed in registers on the hot path.
public struct LockdepSite: @unchecked Sendable, Equatable, CustomStringConvertible {
    @usableFromInline let filePointer: UnsafeRawPointer
    @usableFromInline let functionPointer: UnsafeRawPointer
    /// The line of the call site.
    public let line: UInt

    /// Creates a site; the defaults capture the caller's location.
    ///
    /// - Parameters:
    ///   - fileID: The file identifier (`#fileID`).
    ///   - line: The line (`#line`).
    ///   - function: The function (`#function`).
    @inlinable
    public init(fileID: StaticString = #fileID, line: UInt = #line, function: StaticString = #function) {
        self.filePointer = LockdepSite.pointer(fileID)
        self.functionPointer = LockdepSite.pointer(function)
        self.line = line
    }

    @inlinable
    static func pointer(_ s: StaticString) -> UnsafeRawPointer {
        s.hasPointerRepresentation ? UnsafeRawPointer(s.utf8Start) : UnsafeRawPointer(LockdepSite.unknown.utf8Start)
    }

    @usableFromInline static let unknown: StaticString = "?"

    /// The `#fileID` of the call site, such as `"IOMMU/Registry.swift"`.
    public var fileID: String { String(cString: filePointer.assumingMemoryBound(to: CChar.self)) }

    /// The `#function` of the call site, such as `"removeDevice(_:)"`.
    public var function: String { String(cString: functionPointer.assumingMemoryBound(to: CChar.self)) }

    /// The last path component of ``fileID``, such as `"Registry.swift"`.
    public var fileName: String {
        let id = fileID
        if let slash = id.lastIndex(of: "/") { return String(id[id.index(after: slash)...]) }
        return id
    }

    /// `"function File.swift:line"`, the form reports print after `at:`.
    public var description: String { "\(function) \(fileName):\(line)" }

    /// Two sites are equal when file, line and function are equal.
    ///
    /// - Parameters:
    ///   - lhs: A site.
    ///   - rhs: Another site.
    /// - Returns: Whether both name the same place.
    public static func == (lhs: LockdepSite, rhs: LockdepSite) -> Bool {
        lhs.line == rhs.line && (lhs.filePointer == rhs.filePointer || lhs.fileID == rhs.fileID)
            && (lhs.functionPointer == rhs.functionPointer || lhs.function == rhs.function)
    }
}
