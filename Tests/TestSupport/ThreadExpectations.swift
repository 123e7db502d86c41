public import Testing

/// Expectations checked on a helper thread and recorded on the test's own thread.
///
/// Swift Testing attributes an issue to a test through the test's task; an `#expect` on a
/// thread the test started is reported against no test. Check with `expect` on the thread,
/// then call `record()` on the test's thread after joining it.
public final class ThreadExpectations: Sendable {
    private struct Failure {
        let comment: Comment
        let sourceLocation: SourceLocation
    }
    private let failures = Locked<[Failure]>([])

    public init() {}

    /// Notes a failure unless `condition` holds.
    public func expect(
        _ condition: Bool, _ comment: @autoclosure () -> String = "", sourceLocation: SourceLocation = #_sourceLocation
    ) {
        guard !condition else { return }
        let failure = Failure(comment: Comment(rawValue: "Expectation failed on a helper thread. \(comment())"),
                              sourceLocation: sourceLocation)
        failures.withLock { $0.append(failure) }
    }

    /// Notes a failure unless `actual == expected`, naming both values.
    public func expectEqual<Value: Equatable>(
        _ actual: Value, _ expected: Value, _ comment: @autoclosure () -> String = "",
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        expect(actual == expected, "\(actual) is not equal to \(expected). \(comment())", sourceLocation: sourceLocation)
    }

    /// Records, as issues of the current test, every failure noted so far.
    public func record() {
        let noted = failures.withLock { noted in defer { noted = [] }; return noted }
        for failure in noted { Issue.record(failure.comment, sourceLocation: failure.sourceLocation) }
    }
}
