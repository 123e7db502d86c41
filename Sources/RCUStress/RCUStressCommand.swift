import ArgumentParser

/// The `rcu-stress` tool: stress tests and benchmarks of swift-rcu, in release builds.
///
/// Every subcommand prints a human table by default and one JSON object per
/// result line with `--json`. Timings are compared against a baseline measured
/// in the same process, because the machines they run on are shared and noisy.
@main
struct RCUStressCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rcu-stress",
        abstract: "Stress tests and benchmarks for swift-rcu (userspace RCU for Swift).",
        subcommands: [RegistryCommand.self, ReadCost.self, Urcu.self, Torture.self, LockCost.self, ContainerBench.self,
                      TasksCommand.self, LockGraph.self, RetireStorm.self, Flood.self],
        defaultSubcommand: RegistryCommand.self
    )
}
