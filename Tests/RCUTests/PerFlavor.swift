import Testing

/// The tests that run the same checks on every flavor, in Swift Testing: one reported
/// case per flavor (`@Test(arguments: allFlavors)`), in suites nested here.
///
/// Serialized, like the XCTest tests: they share process-wide state (the misuse, stall and
/// Lockdep handlers, each flavor's backlog and workers), so no two may run at once. Suites of
/// synchronous tests run on a thread of their own (`.onTestThread`), where they may block, as
/// XCTest's tests do on the main thread.
///
/// Swift Testing runs the package's suites in one process, separate roots in parallel: a
/// Swift Testing test in another target would run beside these. The other targets stay
/// XCTest, which runs one test at a time. Filters: `--filter ReclamationTests` selects the
/// XCTest class and this suite's `PerFlavor/ReclamationTests`; `--filter PerFlavor` all of these.
@Suite(.serialized) enum PerFlavor {}
