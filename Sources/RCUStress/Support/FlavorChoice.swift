import ArgumentParser

/// One of liburcu's four RCU flavors, as the subcommands run them (each in a switch that
/// names the concrete `RCUFlavor` type, so every run is specialised for its flavor).
enum LiburcuFlavor: String, CaseIterable, Sendable {
    case memb, qsbr, bp, mb
}

/// Every subcommand's `--flavor`: one of liburcu's four flavors, a pthread lock in place
/// of RCU (the `urcu` baselines, liburcu's test_rwlock and test_mutex), or all four
/// flavors in turn. Each subcommand accepts a subset (``validate(accepting:)``).
enum FlavorChoice: Hashable, CaseIterable, CustomStringConvertible, ExpressibleByArgument, Sendable {
    case rcu(LiburcuFlavor)
    case rwlock
    case mutex
    case all

    static let memb = FlavorChoice.rcu(.memb)
    static let qsbr = FlavorChoice.rcu(.qsbr)
    static let bp = FlavorChoice.rcu(.bp)
    static let mb = FlavorChoice.rcu(.mb)

    static let allCases: [FlavorChoice] = LiburcuFlavor.allCases.map(FlavorChoice.rcu) + [.rwlock, .mutex, .all]

    /// The four flavors alone, and with `all`: the sets most subcommands accept.
    static let oneFlavor: [FlavorChoice] = LiburcuFlavor.allCases.map(FlavorChoice.rcu)
    static let oneFlavorOrAll: [FlavorChoice] = oneFlavor + [.all]

    init?(argument: String) {
        guard let choice = Self.allCases.first(where: { $0.name == argument }) else { return nil }
        self = choice
    }

    /// The name on the command line.
    var name: String {
        switch self {
        case .rcu(let flavor): flavor.rawValue
        case .rwlock: "rwlock"
        case .mutex: "mutex"
        case .all: "all"
        }
    }

    var defaultValueDescription: String { name }

    var description: String { name }

    /// No shared list in the help: each subcommand's help names the values it runs, and
    /// refuses the others with that list (``validate(accepting:)``).
    static var allValueStrings: [String] { [] }

    /// The flavors this choice runs, in report order (none for the lock baselines).
    var flavors: [LiburcuFlavor] {
        switch self {
        case .rcu(let flavor): [flavor]
        case .all: LiburcuFlavor.allCases
        case .rwlock, .mutex: []
        }
    }

    /// The one flavor this choice names, or `nil` (a lock baseline, or `all`).
    var flavor: LiburcuFlavor? {
        if case .rcu(let flavor) = self { flavor } else { nil }
    }

    /// Refuses a choice the subcommand does not run, naming the ones it does.
    func validate(accepting accepted: [FlavorChoice]) throws {
        guard accepted.contains(self) else {
            let names = accepted.map(\.name)
            throw ValidationError("--flavor \(name) is not one this subcommand runs: \(names.dropLast().joined(separator: ", ")) or \(names.last!).")
        }
    }
}
