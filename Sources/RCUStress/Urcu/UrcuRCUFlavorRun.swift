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
                Flavor.quiescentStateIfQSBR()
                counter.publish(reads)
            }
            control.waitForGo()
            // `bad` packs the two failure kinds: poisoned in the low half, null in the high half
            // (UrcuReadLoop.failure).
            return
                readDuration == 0
                ? UrcuReadLoop.run(
                    sampleEvery: config.sampleEvery, control: control, latency: &result.latency, every1024: every1024,
                    burst: { readBurst(rcuReader, shared, count: $0, control: control) },
                    timedRead: { readOnce(rcuReader, shared, &$0) })
                : UrcuReadLoop.run(
                    sampleEvery: config.sampleEvery, control: control, latency: &result.latency, every1024: every1024,
                    burst: { readBurst(rcuReader, shared, count: $0, control: control, readDuration: readDuration) },
                    timedRead: { readOnce(rcuReader, shared, &$0, readDuration: readDuration) })
        }
        result.reads = reads
        result.poisoned = bad & 0xFFFF_FFFF
        result.nulls = bad >> 32
        return result
    }

    /// `count` untimed reads (``UrcuReadLoop/burst(count:control:_:)``), without `-c`.
    @inline(never)
    static func readBurst(
        _ reader: borrowing RCUReader<Flavor>, _ shared: Shared, count: Int, control: StressControl
    ) -> UrcuReadBurst {
        UrcuReadLoop.burst(count: count, control: control) { readOnce(reader, shared, &$0) }
    }

    /// `count` untimed reads, each spending `readDuration` loops inside its section (`-c`).
    @inline(never)
    static func readBurst(
        _ reader: borrowing RCUReader<Flavor>, _ shared: Shared, count: Int, control: StressControl, readDuration: Int
    ) -> UrcuReadBurst {
        UrcuReadLoop.burst(count: count, control: control) { readOnce(reader, shared, &$0, readDuration: readDuration) }
    }

    /// One read section: adds ``UrcuReadLoop/failure(_:)`` to `bad` if the node read is
    /// poisoned (a grace period ended under the reader) or none was published.
    /// `readDuration` loops are spent inside the section (`-c`); the loop without them
    /// is a separate specialisation.
    @inline(__always)
    static func readOnce(_ reader: borrowing RCUReader<Flavor>, _ shared: Shared, _ bad: inout Int, readDuration: Int = 0) {
        reader.read { section in
            let found = shared.pointer.withValue(in: section) { node in
                let value = node.value.load(ordering: .relaxed)
                if _slowPath(value != StressNode.live) { bad &+= UrcuReadLoop.failure(value) }
                if readDuration != 0 { SpinDelay.loop(readDuration) }
                return true
            }
            if _slowPath(found == nil) { bad &+= UrcuReadLoop.failure(nil) }
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
        if config.batch == nil && config.writeDuration == 0 {
            // The default: a loop of its own, as thr_writer's, with no mode tests per write.
            let writerDelay = config.writerDelay
            repeat {
                shared.pointer.replaceAndSynchronize(with: StressNode())
                writes &+= 1
                counter.publish(writes)
                if control.shouldStop { break }
                if writerDelay != 0 { SpinDelay.loop(writerDelay) }
            } while true
            return writes
        }
        repeat {
            // Each branch allocates its own node and hands it straight to the pointer: a node
            // bound before the branches stays retained by the loop around every call.
            if let size = config.batch {
                if let old = shared.pointer.exchange(StressNode()) { batch.append(old) }
                if config.writeDuration != 0 { SpinDelay.loop(config.writeDuration) }
                if batch.count >= size {
                    Flavor.retire(StressNodeBatch(batch))
                    batch.removeAll(keepingCapacity: true)
                }
            } else if config.writeDuration == 0 {
                shared.pointer.replaceAndSynchronize(with: StressNode())
            } else {
                let old = shared.pointer.exchange(StressNode())
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
