import Foundation
import RCU
import RCUTestSupport
import XCTest

/// liburcu-cds takes bp's read lock and registration itself on the threads it runs (the
/// hash table's resize worker): through the shim's bp flavor table those threads enter
/// the package's reader registry too, so they are counted and a stall report can name
/// them. Run in a process of its own, so that the resize worker is new.
final class BulletproofCDSRegistrationTests: XCTestCase {
    func testHashMapResizeWorkerIsCountedAsABulletproofReader() throws {
        if IsolatedTest.isChild {
            alarm(60)
            RCUBulletproof.read { _ in }                                    // this thread's own registration
            let before = RCUBulletproof.registeredThreadCount
            let map = RCUHashMap<Int, Int, RCUBulletproof>(minimumCapacity: 1)
            for key in 0..<20_000 { _ = map.updateValue(key, forKey: key) }   // grows on liburcu's resize worker
            let deadline = ContinuousClock.now + .seconds(20)
            while RCUBulletproof.registeredThreadCount <= before, ContinuousClock.now < deadline { usleep(1_000) }
            print("BP-CDS-COUNT \(before) \(RCUBulletproof.registeredThreadCount)")
            return
        }
        let result = try IsolatedTest.run(
            "RCUContainerTests.BulletproofCDSRegistrationTests/testHashMapResizeWorkerIsCountedAsABulletproofReader")
        let counts = result.output.split(separator: "\n").first { $0.hasPrefix("BP-CDS-COUNT") }?
            .split(separator: " ").dropFirst().compactMap { Int($0) }
        guard let counts, counts.count == 2 else {
            return XCTFail("the child printed no counts: \(result.reason) \(result.status)\n\(result.output)")
        }
        XCTAssertEqual(counts[1], counts[0] + 1, "the resize worker is a registered bp reader (before, after: \(counts))")
    }
}
