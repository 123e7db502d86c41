import Testing

/// The tests that run the same checks on every flavor, in Swift Testing: one reported
/// case per flavor (`@Test(arguments: allFlavors)`), in suites nested here.
///
/// Serialized, like the XCTest tests: they share process-wide state (the misuse, stall and
/// Lockdep handlers, each flavor's backlog and workers), so no two may run at once.
@Suite(.serialized) enum PerFlavor {}
