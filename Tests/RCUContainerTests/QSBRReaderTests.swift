import Foundation
import RCU
import XCTest

/// Containers used by QSBR threads that stay online (``RCUQSBR/Reader``) and
/// announce quiescent states, rather than going online per section.
final class QSBRReaderTests: XCTestCase {
    func testOnlineReadersAndWritersMakeProgress() {
        let ledger = Ledger()
        let lock = RCUWriterMutex()
        let created: Int
        do {
            let list = RCUList<Tracked, RCUQSBR>(lock: lock)
            let map = RCUHashMap<Int, Tracked, RCUQSBR>()
            let queue = LockFreeQueue<Int, RCUQSBR>()
            let stop = Flag()
            let violations = Violations()
            let reader = startThread(named: "qsbr-online") {
                RCUQSBR.withReader { reader in
                    var key = 0
                    while !stop.isSet {
                        reader.read { section in
                            list.forEach(in: section) { if !$0.isAlive { violations.record("freed list element") } }
                            map.withValue(forKey: key % 128, in: section) { value in
                                if !value.isAlive || value.key != key % 128 {
                                    violations.record("bad map value")
                                }
                            }
                        }
                        _ = queue.dequeue()  // nests a generic section inside the online thread
                        reader.quiescentState()
                        key += 1
                    }
                }
            }
            // The writer is itself an online QSBR reader: retiring must not wait for it.
            RCUQSBR.withReader { writer in
                var nodes: [RCUListNode<Tracked>] = []
                for step in 0..<3000 {
                    lock.withLock {
                        nodes.append(list.append(Tracked(id: step, ledger: ledger)))
                        if nodes.count > 32 { list.remove(nodes.removeFirst()) }
                    }
                    map.updateValue(Tracked(id: 100_000 + step, key: step % 128, ledger: ledger), forKey: step % 128)
                    queue.enqueue(step)
                    writer.quiescentState()
                }
                stop.set()
                writer.offline { reader.wait() }
            }
            XCTAssertEqual(violations.all, [])
            created = ledger.createdCount
        }
        RCUQSBR.barrier()
        XCTAssertTrue(ledger.waitForFreed(created))
        XCTAssertEqual(ledger.doubleFrees, 0)
    }
}
