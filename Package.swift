// swift-tools-version: 6.1
import PackageDescription

/// liburcu's flavors, as the shims and their pkg-config files name them (one C module per
/// flavor: liburcu's call-rcu.h and defer.h have include guards).
let urcuFlavors = [(shim: "CURCUMemb", library: "memb"), (shim: "CURCUQSBR", library: "qsbr"),
                   (shim: "CURCUBP", library: "bp"), (shim: "CURCUMB", library: "mb")]

/// liburcu's library `liburcu-<library>`, found with pkg-config (`liburcu-dev` on Debian and
/// Ubuntu, `userspace-rcu` on Homebrew; SwiftPM names the package when it is missing).
func urcuSystemLibrary(_ library: String) -> Target {
    .systemLibrary(
        name: "CLibURCU\(library.uppercased())",
        path: "CHeaders/System/liburcu-\(library)",
        pkgConfig: "liburcu-\(library)",
        providers: [.apt(["liburcu-dev"]), .brew(["userspace-rcu"])]
    )
}

/// A flavor's shim over its liburcu library.
func urcuShim(_ name: String, library: String) -> Target {
    .target(
        name: name,
        // CLockdepThread: the cell type of RCU's Lockdep pseudo-locks.
        dependencies: ["CURCUCommon", "CLockdepThread", .target(name: "CLibURCU\(library.uppercased())")],
        path: "CHeaders/\(name)",
        linkerSettings: [.linkedLibrary("pthread")]
    )
}

let strictSwift: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

/// Lockdep's checks: always in debug builds; in release builds only with
/// `swift build -c release --traits LockdepInRelease`. The modules that annotate themselves for
/// Lockdep, and the tests of what only a build with checks has, follow the same switch.
let lockdepChecks: [SwiftSetting] = [
    .define("LOCKDEP_CHECKS", .when(configuration: .debug)),
    .define("LOCKDEP_CHECKS", .when(traits: ["LockdepInRelease"])),
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
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
    ],
    targets: (urcuFlavors.map(\.library) + ["cds"]).map(urcuSystemLibrary)
        + urcuFlavors.map { urcuShim($0.shim, library: $0.library) } + [
        urcuShim("CURCUCDS", library: "cds"),
        // What the flavor shims share: pointer operations, thread names, the flavor operations table.
        .target(name: "CURCUCommon", path: "CHeaders/CURCUCommon", linkerSettings: [.linkedLibrary("pthread")]),

        // Lockdep's thread-local state pointer (one %fs load on the checked fast path).
        .target(name: "CLockdepThread"),
        .target(
            name: "Lockdep",
            dependencies: ["CLockdepThread"],
            swiftSettings: strictSwift + lockdepChecks
        ),
        .target(
            name: "RCU",
            dependencies: ["CURCUCommon", "CURCUMemb", "CURCUQSBR", "CURCUBP", "CURCUMB", "CURCUCDS", "Lockdep"],
            swiftSettings: strictSwift + lockdepChecks
        ),
        .target(
            name: "IOMMU",
            dependencies: ["RCU", "Lockdep"],
            swiftSettings: strictSwift + lockdepChecks
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
        .testTarget(name: "RCUTests", dependencies: ["RCU", "Lockdep", "RCUTestSupport"],
                    swiftSettings: strictSwift + lockdepChecks),
        .testTarget(name: "IOMMUTests", dependencies: ["IOMMU", "RCU", "Lockdep", "TestSupport"],
                    swiftSettings: strictSwift + lockdepChecks),
        .testTarget(name: "LockdepTests", dependencies: ["Lockdep", "TestSupport"],
                    swiftSettings: strictSwift + lockdepChecks),
        .testTarget(name: "RCUContainerTests", dependencies: ["RCU", "Lockdep", "RCUTestSupport"],
                    swiftSettings: strictSwift + lockdepChecks),
        // Parses rcu-stress command lines in-process, and runs the built executable (a dependency,
        // so `swift test` builds it first).
        .testTarget(
            name: "RCUStressTests",
            dependencies: ["RCUStress", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strictSwift),
    ]
)
