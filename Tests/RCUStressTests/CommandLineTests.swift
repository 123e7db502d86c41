import ArgumentParser
@testable import RCUStress
import XCTest

/// The command line every subcommand shares, parsed in this process: `--json` from one option
/// group, one `--flavor` type with each subcommand's own set, and `--duration` for the length
/// of a run.
final class CommandLineTests: XCTestCase {
    /// A valid command line of each subcommand, without `--json`.
    private let commandLines: [[String]] = [
        ["registry", "--duration", "1"],
        ["read-cost"],
        ["urcu", "1", "1", "1", "--flavor", "memb"],
        ["torture", "--flavor", "memb", "--duration", "1"],
        ["lock-cost"],
        ["containers", "--duration", "1"],
        ["tasks"],
        ["lock-graph"],
        ["retire-storm"],
        ["flood", "--duration", "1"],
    ]

    /// The `--json` flag of a parsed command.
    private func json(_ command: any ParsableCommand) -> Bool? {
        switch command {
        case let c as RegistryCommand: c.output.json
        case let c as ReadCost: c.output.json
        case let c as Urcu: c.output.json
        case let c as Torture: c.output.json
        case let c as LockCost: c.output.json
        case let c as ContainerBench: c.output.json
        case let c as TasksCommand: c.output.json
        case let c as LockGraph: c.output.json
        case let c as RetireStorm: c.output.json
        case let c as Flood: c.output.json
        default: nil
        }
    }

    func testEverySubcommandTakesTheSharedJSONFlag() throws {
        XCTAssertEqual(commandLines.count, RCUStressCommand.configuration.subcommands.count)
        for arguments in commandLines {
            XCTAssertEqual(json(try StressCLI.parse(arguments)), false, "\(arguments)")
            XCTAssertEqual(json(try StressCLI.parse(arguments + ["--json"])), true, "\(arguments) --json")
        }
    }

    /// One `--flavor` type: every subcommand names the same values, and refuses the ones it
    /// does not run with the list of those it does.
    func testFlavorSetsPerSubcommand() throws {
        XCTAssertEqual(FlavorChoice.allCases.map(\.name), ["memb", "qsbr", "bp", "mb", "rwlock", "mutex", "all"])
        let registry = try XCTUnwrap(StressCLI.parse(["registry", "--flavor", "qsbr"]) as? RegistryCommand)
        XCTAssertEqual(registry.flavor, .qsbr)
        XCTAssertEqual(try XCTUnwrap(StressCLI.parse(["registry"]) as? RegistryCommand).flavor, .memb)
        let urcu = try XCTUnwrap(StressCLI.parse(["urcu", "1", "1", "1", "--flavor", "mutex"]) as? Urcu)
        XCTAssertEqual(urcu.flavor, .mutex)
        XCTAssertEqual(urcu.flavor.programName, "rcu-stress_mutex")
        XCTAssertEqual(FlavorChoice.qsbr.programName, "rcu-stress_urcu_qsbr")
        XCTAssertEqual(FlavorChoice.memb.programName, "rcu-stress_urcu")
        let torture = try XCTUnwrap(StressCLI.parse(["torture", "--flavor", "all", "--duration", "1"]) as? Torture)
        XCTAssertEqual(torture.flavor.flavors, [.memb, .qsbr, .bp, .mb])
        StressCLI.assertUsageError(["urcu", "1", "1", "1", "--flavor", "all"], mentions: "memb, qsbr, bp, mb, rwlock or mutex")
        StressCLI.assertUsageError(["torture", "--flavor", "mutex", "--duration", "1"], mentions: "memb, qsbr, bp, mb or all")
        StressCLI.assertUsageError(["flood", "--flavor", "rwlock"], mentions: "memb, qsbr, bp, mb or all")
        StressCLI.assertUsageError(["read-cost", "--flavor", "mutex"], mentions: "memb, qsbr, bp, mb or all")
        StressCLI.assertUsageError(["retire-storm", "--flavor", "all"], mentions: "memb, qsbr, bp or mb")
        StressCLI.assertUsageError(["registry", "--flavor", "mb"], mentions: "memb or qsbr")
        StressCLI.assertUsageError(["registry", "--flavor", "signal"], mentions: "--flavor", showsUsage: true)
    }

    /// Each subcommand's help names the flavors it runs, in the names the command line takes.
    func testFlavorHelpNamesTheValues() {
        let help = RCUStressCommand.helpMessage(for: RegistryCommand.self, columns: 400)
        XCTAssertTrue(help.contains("The registry's RCU flavor: memb or qsbr. (default: memb)"), help)
        XCTAssertFalse(help.contains("LiburcuFlavor"), help)
        let urcu = RCUStressCommand.helpMessage(for: Urcu.self, columns: 400)
        XCTAssertTrue(urcu.contains("memb, qsbr, bp, mb, rwlock or mutex"), urcu)
    }

    /// `containers --seconds` is now `--duration`, as in every other subcommand.
    func testContainersTakesDuration() throws {
        let containers = try XCTUnwrap(StressCLI.parse(["containers", "--duration", "0.25"]) as? ContainerBench)
        XCTAssertEqual(containers.duration, 0.25)
        StressCLI.assertUsageError(["containers", "--seconds", "1"], mentions: "--seconds")
        StressCLI.assertUsageError(["containers", "--duration", "3601"], mentions: "--duration must be a number of seconds in (0, 3600]")
    }

    /// Every `--duration` (and `urcu`'s DURATION) refuses zero, negative, infinite and NaN seconds.
    func testEveryDurationRefusesNonPositiveAndNonFiniteSeconds() {
        let runs: [(prefix: [String], suffix: [String], name: String)] = [
            (["registry", "--duration"], [], "--duration"),
            (["torture", "--flavor", "memb", "--duration"], [], "--duration"),
            (["containers", "--duration"], [], "--duration"),
            (["flood", "--duration"], [], "--duration"),
            (["urcu", "1", "1"], ["--flavor", "memb"], "DURATION"),
        ]
        for run in runs {
            for seconds in ["0", "-1", "inf", "nan"] {
                let value = run.name == "DURATION" && seconds.hasPrefix("-") ? ["--", seconds] : [seconds]
                let arguments = run.name == "DURATION"
                    ? run.prefix + run.suffix + value : run.prefix + value + run.suffix
                StressCLI.assertUsageError(arguments, mentions: run.name)
            }
        }
    }
}
