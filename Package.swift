// swift-tools-version: 6.1
import PackageDescription

/// liburcu is found in the system include path (`liburcu-dev`); `make` installs it when missing.
func urcuShim(_ name: String, links: [String]) -> Target {
    .target(
        name: name,
        dependencies: ["CLockdepThread"],   // the cell type of RCU's Lockdep pseudo-locks
        path: "CHeaders/\(name)",
        linkerSettings: links.map { .linkedLibrary($0) } + [.linkedLibrary("pthread")]
    )
}

let strictSwift: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "swift-rcu",
    products: [
        .library(name: "RCU", targets: ["RCU"]),
        .library(name: "Lockdep", targets: ["Lockdep"]),
        .library(name: "IOMMU", targets: ["IOMMU"]),
        .executable(name: "rcu-stress", targets: ["RCUStress"]),
    ],
    traits: [
        .trait(
            name: "LockdepInRelease",
            description: "Keep Lockdep's checks compiled into release builds (they are always on in debug builds)."
        ),
        .trait(
            name: "RegistryQSBR",
            description: "Build the IOMMU registry on liburcu's qsbr flavor instead of memb (`rcu-stress registry --flavor qsbr`)."
        ),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
    ],
    targets: [
        urcuShim("CURCUMemb", links: ["urcu-memb", "urcu-common"]),
        urcuShim("CURCUQSBR", links: ["urcu-qsbr", "urcu-common"]),
        urcuShim("CURCUBP", links: ["urcu-bp", "urcu-common"]),
        urcuShim("CURCUMB", links: ["urcu-mb", "urcu-common"]),
        urcuShim("CURCUCDS", links: ["urcu-cds", "urcu-common"]),

        // Lockdep's thread-local state pointer (one %fs load on the checked fast path).
        .target(name: "CLockdepThread"),
        .target(
            name: "Lockdep",
            dependencies: ["CLockdepThread"],
            swiftSettings: strictSwift + [
                // Lockdep's checks: always in debug builds; in release builds only with
                // `swift build -c release --traits LockdepInRelease`.
                .define("LOCKDEP_CHECKS", .when(configuration: .debug)),
                .define("LOCKDEP_CHECKS", .when(traits: ["LockdepInRelease"])),
            ]
        ),
        .target(
            name: "RCU",
            dependencies: ["CURCUMemb", "CURCUQSBR", "CURCUBP", "CURCUMB", "CURCUCDS", "Lockdep"],
            swiftSettings: strictSwift + [
                // RCU annotates itself for Lockdep under the same switch as Lockdep's own checks.
                .define("LOCKDEP_CHECKS", .when(configuration: .debug)),
                .define("LOCKDEP_CHECKS", .when(traits: ["LockdepInRelease"])),
            ]
        ),
        .target(
            name: "IOMMU",
            dependencies: ["RCU", "Lockdep"],
            swiftSettings: strictSwift + [
                // The registry's lockdep_assert_held() calls follow Lockdep's own switch.
                .define("LOCKDEP_CHECKS", .when(configuration: .debug)),
                .define("LOCKDEP_CHECKS", .when(traits: ["LockdepInRelease"])),
                // The registry's RCU flavor (`RegistryRCU`): memb unless the trait asks for qsbr.
                .define("REGISTRY_QSBR", .when(traits: ["RegistryQSBR"])),
            ]
        ),
        .target(
            name: "CReference",
            dependencies: ["CURCUMemb", "CURCUQSBR", "CURCUBP", "CURCUMB"]
        ),
        .executableTarget(
            name: "RCUStress",
            dependencies: [
                "RCU", "Lockdep", "IOMMU", "CReference", "CURCUMemb", "CURCUQSBR",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            swiftSettings: strictSwift
        ),

        // Test support (plain library targets, no XCTest). TestSupport: threads, locks, the RNG,
        // Lockdep report collection, for every test target; it does not depend on RCU, so
        // LockdepTests stays independent of it. RCUTestSupport adds what needs RCU.
        .target(name: "TestSupport", dependencies: ["Lockdep"], path: "Tests/TestSupport", swiftSettings: strictSwift),
        .target(name: "RCUTestSupport", dependencies: ["TestSupport", "RCU", "Lockdep"], path: "Tests/RCUTestSupport",
                swiftSettings: strictSwift),
        .testTarget(name: "RCUTests", dependencies: ["RCU", "Lockdep", "RCUTestSupport"], swiftSettings: strictSwift),
        .testTarget(name: "IOMMUTests", dependencies: ["IOMMU", "RCU", "Lockdep", "TestSupport"], swiftSettings: strictSwift),
        .testTarget(name: "LockdepTests", dependencies: ["Lockdep", "TestSupport"], swiftSettings: strictSwift),
        .testTarget(name: "RCUContainerTests", dependencies: ["RCU", "Lockdep", "RCUTestSupport"], swiftSettings: strictSwift),
        // Runs the built rcu-stress executable (a dependency, so `swift test` builds it first).
        .testTarget(name: "RCUStressTests", dependencies: ["RCUStress"], swiftSettings: strictSwift),
    ]
)
