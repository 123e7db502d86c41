import Foundation
import XCTest

/// A type outside the package declaring `RCUFlavor` conformance: it would supply the read
/// side itself (a `_sectionReadLock` that does nothing, say) while borrowing a real
/// flavor's grace periods, which would then not wait for its readers. The conformance must
/// not compile. Checked by type-checking client files against this build's modules.
final class AdversarialFlavorConformanceTests: XCTestCase {
    /// The read side a hostile conformance supplies, after its seal.
    private static let fastPath = """
            static func _sectionReadLock() -> Bool { false }
            static func _sectionReadUnlock(broughtOnline: Bool) {}
            static var _readerState: UnsafeMutableRawPointer? { nil }
            static func _scopeReadLock(_ scope: UnsafeRawPointer?) -> Bool { false }
            static func _scopeReadUnlock(_ scope: UnsafeRawPointer?, broughtOnline: Bool) {}
            static var _isInReadSection: Bool { false }
            static var _isThreadRegistered: Bool { true }
            static var _backlogIsOver: Bool { false }
        """

    /// A folder of this test's client files and their module cache.
    private let folder = FileManager.default.temporaryDirectory.appendingPathComponent("rcu-conformance-\(getpid())")

    override func tearDown() {
        try? FileManager.default.removeItem(at: folder)
        super.tearDown()
    }

    func testClientConformanceToRCUFlavorDoesNotCompile() throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        // Control: generic client code over the four flavors compiles with the same command,
        // so the failures below are the seal's and not a broken command line.
        let control = try typecheck("""
            import RCU
            func sections<F: RCUFlavor>(_: F.Type) -> String { F.read { _ in F.flavorDescription.name } }
            let names = [sections(RCUMemb.self), sections(RCUBulletproof.self), sections(RCUMemoryBarrier.self)]
            """)
        XCTAssertEqual(control.status, 0, control.output)

        // Another flavor's description, as the requirement was before the seal.
        let borrowedDescription = try typecheck("""
            import RCU
            struct BorrowedDescription: RCUFlavor {
                static var flavorDescription: RCUFlavorDescription { RCUMemb.flavorDescription }
            \(Self.fastPath)
            }
            """)
        XCTAssertNotEqual(borrowedDescription.status, 0)
        XCTAssertTrue(borrowedDescription.output.contains("'BorrowedDescription' does not conform to protocol 'RCUFlavor'"),
                      borrowedDescription.output)

        // Another flavor's seal: its type names the other flavor.
        let borrowedSeal = try typecheck("""
            import RCU
            struct BorrowedSeal: RCUFlavor {
                static var _flavorSeal: _RCUFlavorSeal<RCUMemb> { RCUMemb._flavorSeal }
            \(Self.fastPath)
            }
            """)
        XCTAssertNotEqual(borrowedSeal.status, 0)
        XCTAssertTrue(borrowedSeal.output.contains("'BorrowedSeal' does not conform to protocol 'RCUFlavor'"), borrowedSeal.output)

        // A seal of its own type: only the package can make one.
        let ownSeal = try typecheck("""
            import RCU
            struct OwnSeal: RCUFlavor {
                static var _flavorSeal: _RCUFlavorSeal<OwnSeal> { _RCUFlavorSeal(RCUMemb.flavorDescription) }
            \(Self.fastPath)
            }
            """)
        XCTAssertNotEqual(ownSeal.status, 0)
        XCTAssertTrue(ownSeal.output.contains("initializer is inaccessible due to 'internal' protection level"), ownSeal.output)
    }

    /// A value that an RCU type retires is released on a call_rcu worker, another thread:
    /// a non-`Sendable` value there would be a data race Swift 6 could not see. The
    /// pointer and the containers that retire values take `Sendable` values only.
    func testNonSendableValuesAreRefusedByRetiringTypes() throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let control = try typecheck("""
            import RCU
            final class Shared: Sendable { let count = 0 }
            let pointer = RCUPointer<Shared, RCUMemb>(Shared())
            let map = RCUDictionary<Int, Shared, RCUMemb>()
            """)
        XCTAssertEqual(control.status, 0, control.output)
        for use in ["RCUPointer<Unshared, RCUMemb>(Unshared())", "RCUDictionary<Int, Unshared, RCUMemb>()",
                    "RCUHashMap<Int, Unshared, RCUMemb>()", "LockFreeQueue<Unshared, RCUMemb>()"] {
            let refused = try typecheck("""
                import RCU
                final class Unshared { var count = 0 }
                func make() { let value = \(use); _ = value }
                """)
            XCTAssertNotEqual(refused.status, 0, use)
            XCTAssertTrue(refused.output.contains("type 'Unshared' does not conform to the 'Sendable' protocol"),
                          "\(use): \(refused.output)")
        }
    }

    /// Type-checks `source` as a client of this build's RCU module; returns swiftc's exit
    /// status and output.
    private func typecheck(_ source: String) throws -> (status: Int32, output: String) {
        // The test bundle sits in the build folder (.build/<triple>/debug), beside Modules.
        let build = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        var arguments = ["swiftc", "-typecheck", "-swift-version", "6", "-I", build.appendingPathComponent("Modules").path]
        for root in [build, repository.appendingPathComponent("CHeaders"), repository.appendingPathComponent("Sources")] {
            let files = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil)
            while let file = files?.nextObject() as? URL {
                if root != build, file.lastPathComponent == "include" { arguments += ["-Xcc", "-I\(file.path)"] }
                guard file.lastPathComponent == "module.modulemap", !file.path.contains("ArgumentParser"),
                      !file.path.contains("PackageTests"), !file.path.contains("PackageDiscoveredTests") else { continue }
                arguments += ["-Xcc", "-fmodule-map-file=\(file.path)"]
            }
        }
        let file = folder.appendingPathComponent("client-\(UUID()).swift")
        try source.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        arguments += ["-module-cache-path", folder.appendingPathComponent("cache").path, file.path]

        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, text)
    }
}
