/// A source location captured at a lock operation: the file, line and function of the caller.
///
/// Every checked lock operation takes `#fileID`, `#line` and `#function` default arguments and
/// packs them into a `LockdepSite`, so reports can say where each lock was taken. Capturing a
/// site costs three constant stores: it never allocates.
public struct LockdepSite: Sendable, Equatable, CustomStringConvertible {
    /// The `#fileID` of the call site, such as `"IOMMU/Registry.swift"`.
    public let fileID: StaticString
    /// The line of the call site.
    public let line: UInt
    /// The `#function` of the call site, such as `"removeDevice(_:)"`.
    public let function: StaticString

    /// Creates a site; the defaults capture the caller's location.
    ///
    /// - Parameters:
    ///   - fileID: The file identifier (`#fileID`).
    ///   - line: The line (`#line`).
    ///   - function: The function (`#function`).
    @inlinable
    public init(fileID: StaticString = #fileID, line: UInt = #line, function: StaticString = #function) {
        self.fileID = fileID
        self.line = line
        self.function = function
    }

    /// The last path component of ``fileID``, such as `"Registry.swift"`.
    public var fileName: String {
        let id = fileID.description
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
        lhs.line == rhs.line && lhs.fileID.description == rhs.fileID.description
            && lhs.function.description == rhs.function.description
    }
}
