import RCU

/// The `urcu` run for an RCU flavor: test_urcu's readers and writers over an
/// ``RCUPointer``.
///
/// Readers open a `withReader` scope and loop lock -> dereference -> check the value -> unlock; qsbr readers
/// announce a quiescent state every 1024 reads, as test_urcu_qsbr does.
///
/// Writers allocate a node and publish it, then, by default, wait for a grace
/// period and free the old node (``RCUPointer/replaceAndSynchronize(with:file:line:)-2vxqr``;
/// its `deinit` poisons it). With `-e` the wait is preceded by the busy loop,
/// so the writer uses ``RCUPointer/exchange(_:)``, `synchronize()` and poisons
/// the old node explicitly. With `-b BATCH` no writer waits: old nodes are
/// gathered and each batch is retired with one call_rcu (``RCUFlavor/retire(_:)``),
/// whose callback poisons them.
enum UrcuRCUFlavorRun<Flavor: RCUFlavor> {
    /// The published pointer, shared by the threads.
    final class Shared: Sendable {
        let pointer = RCUPointer<StressNode, Flavor>(StressNode())
    }

    /// Runs `config` and returns its totals.
    static func run(_ config: UrcuConfiguration) -> UrcuResult {
        let shared = Shared()
        return UrcuHarness.run(
            config, backlog: { Flavor.pendingCallbacks },
            reader: { index, control, results in
                results.add(reader(shared, control.counters[index], control, config))
            },
            writer: { index, control, results in
                results.add(writes: writer(shared, control.counters[index], control, config))
            },
            afterJoin: {
                // Run the retired batches' callbacks, so every node is poisoned and freed before exit.
                if config.batch != nil { Flavor.barrier() }
            })
    }

    /// One reader thread's loop (liburcu's `thr_reader`).
    static func reader(
        _ shared: Shared, _ counter: PaddedCounter, _ control: StressControl, _ config: UrcuConfiguration
    ) -> UrcuReaderResult {
        var result = UrcuReaderResult()
        let (reads, bad) = Flavor.withReader { rcuReader in
            let readDuration = config.readDuration
            let every1024 = { (reads: Int) in
                if Flavor.self == RCUQSBR.self { RCUQSBR.quiescentState() }
                counter.publish(reads)
            }
            control.waitForGo()
            // `bad` packs the two failure kinds: poisoned in the low half, null in the high half.
            return
                readDuration == 0
                ? UrcuReadLoop.run(sampleEvery: config.sampleEvery, control: control, latency: &result.latency, every1024: every1024) {
                    readOnce(rcuReader, shared)
                }
                : UrcuReadLoop.run(sampleEvery: config.sampleEvery, control: control, latency: &result.latency, every1024: every1024) {
                    readOnce(rcuReader, shared, readDuration: readDuration)
                }
        }
        result.reads = reads
        result.poisoned = bad & 0xFFFF_FFFF
        result.nulls = bad >> 32
        return result
    }

    /// One read section: 0 if the node read holds the live value, 1 if it is
    /// poisoned, `1 << 32` if no node was published. `readDuration` loops are spent
    /// inside the section (`-c`); the loop without them is a separate specialisation.
    @inline(__always)
    static func readOnce(_ reader: borrowing RCUReader<Flavor>, _ shared: Shared, readDuration: Int = 0) -> Int {
        reader.read { section in
            shared.pointer.withValue(in: section) { node in
                let bad = node.isLive ? 0 : 1
                if readDuration != 0 { SpinDelay.loop(readDuration) }
                return bad
            } ?? 1 << 32
        }
    }

    /// One writer thread's loop (liburcu's `thr_writer`, or test_urcu_gc's with `-b`).
    static func writer(
        _ shared: Shared, _ counter: PaddedCounter, _ control: StressControl, _ config: UrcuConfiguration
    ) -> Int {
        var writes = 0
        var batch: [StressNode] = []
        if let size = config.batch { batch.reserveCapacity(size) }
        control.waitForGo()
        repeat {
            let node = StressNode()
            if let size = config.batch {
                if let old = shared.pointer.exchange(node) { batch.append(old) }
                if config.writeDuration != 0 { SpinDelay.loop(config.writeDuration) }
                if batch.count >= size {
                    Flavor.retire(StressNodeBatch(batch))
                    batch.removeAll(keepingCapacity: true)
                }
            } else if config.writeDuration == 0 {
                shared.pointer.replaceAndSynchronize(with: node)
            } else {
                let old = shared.pointer.exchange(node)
                SpinDelay.loop(config.writeDuration)
                Flavor.synchronize()
                old?.poisonNow()
            }
            writes &+= 1
            counter.publish(writes)
            if control.shouldStop { break }
            if config.writerDelay != 0 { SpinDelay.loop(config.writerDelay) }
        } while true
        if !batch.isEmpty { Flavor.retire(StressNodeBatch(batch)) }
        return writes
    }
}
