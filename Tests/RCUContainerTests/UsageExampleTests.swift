import Lockdep
import RCU
import XCTest

/// A containers usage example: a hash map and a list read in one section, written under a lock.
final class ContainersUsageExampleTests: XCTestCase {
    final class Route: Sendable {
        let nextHop: String
        init(nextHop: String) { self.nextHop = nextHop }
    }

    final class Peer: Sendable {
        let name: String
        init(name: String) { self.name = name }
    }

    func testUsageExample() {
        var probed: [String] = []
        func probe(_ peer: Peer) { probed.append(peer.name) }

        let lock = CheckedMutex("routes->mutex")                  // or RCUWriterMutex()
        let routes = RCUHashMap<String, Route, RCUMemb>()         // liburcu-cds rculfhash, resizable
        let peers = RCUList<Peer, RCUMemb>(lock: lock)            // list_*_rcu; writers must hold `lock`
        routes.updateValue(Route(nextHop: "r1"), forKey: "10.0.0.0/8")
        lock.withLock { _ = peers.append(Peer(name: "a")) }

        var hop: String?
        RCUMemb.read { section in
            hop = routes.withValue(forKey: "10.0.0.0/8", in: section) { $0.nextHop }
            peers.forEach(in: section) { peer in probe(peer) }
        }
        lock.withLock { _ = peers.append(Peer(name: "b")) }       // without the lock: an RCUMisuse report
        routes.updateValue(Route(nextHop: "r2"), forKey: "10.0.0.0/8")   // old value freed after a grace period

        XCTAssertEqual(hop, "r1")
        XCTAssertEqual(probed, ["a"])
        XCTAssertEqual(RCUMemb.read { routes.withValue(forKey: "10.0.0.0/8", in: $0) { $0.nextHop } }, "r2")
        XCTAssertEqual(RCUMemb.read { peers.count(in: $0) }, 2)
    }
}
