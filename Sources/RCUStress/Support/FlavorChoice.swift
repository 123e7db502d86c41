import ArgumentParser

/// The `--flavor` argument: one of liburcu's four flavors, or all of them.
enum FlavorChoice: String, CaseIterable, ExpressibleByArgument {
    case memb, qsbr, bp, mb, all

    /// The flavors this choice stands for, in report order.
    var flavors: [FlavorChoice] {
        self == .all ? [.memb, .qsbr, .bp, .mb] : [self]
    }
}
