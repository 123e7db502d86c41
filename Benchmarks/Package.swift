// swift-tools-version: 6.1
// Micro-benchmarks of swift-rcu (package-benchmark), in their own package so the
// library's users never resolve ordo-one/benchmark. Run from the repository root:
//   swift package --package-path Benchmarks benchmark
//   scripts/benchmark-check.sh            (p90 thresholds in Benchmarks/Thresholds/)
// With LOCKDEP_IN_RELEASE=1 in the environment, swift-rcu is built with its
// `LockdepInRelease` trait, so the "Lock" suite measures the checked path.
import PackageDescription

import class Foundation.ProcessInfo

let lockdepInRelease = ProcessInfo.processInfo.environment["LOCKDEP_IN_RELEASE"] == "1"

let package = Package(
    name: "swift-rcu-benchmarks",
    dependencies: [
        .package(name: "swift-rcu", path: "../", traits: lockdepInRelease ? ["LockdepInRelease"] : []),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "RCUBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "RCU", package: "swift-rcu"),
                .product(name: "Lockdep", package: "swift-rcu"),
            ],
            path: "Benchmarks/RCUBenchmarks",
            swiftSettings: [.swiftLanguageMode(.v6)],
            plugins: [
                .plugin(name: "BenchmarkPlugin", package: "benchmark")
            ]
        )
    ]
)
