import RCU

/// The `urcu` run for an RCU flavor: test_urcu's readers and writers over an
/// ``RCUPointer``.
///
/// Readers open a `withReader` scope and loop lock -> dereference -> check the value -> unlock; qsbr readers
/// announce a quiescent state every 1024 reads, as test_urcu_qsbr does.
///
/// Writers allocate a node and publish it, then, by default, wait for a grace
/// period and free the old node (``RCUPointer/replaceAndSynchronize(with:fileID:line:)-3kjai``;
/// its `deinit` poisons it). With `-e` the wait is preceded by the busy loop,
/// so the writer uses ``RCUPointer/exchange(_:)``, `synchronize()` and poisons
/// the old node explicitly. With `-b BATCH` no writer waits: old nodes are
/// gathered and each batch is retired with one call_rcu (``RCUFlavor/retire(_:)``),
/// whose callback poisons them.
enum UrcuRCUFlavorRun<Flavor: RCUFlavor> {
    /// The published pointer, shared by the threads.
    final class Shared: Sendable {
        /// Empty until the first write, as test_urcu's `test_rcu_pointer` (with no writer,
        /// `2 0 2`, its readers and these find nothing and check nothing).
        let pointer = RCUPointer<StressNode, Flavor>()
    }

    /// Runs `config` and returns its totals.
    static func run(_ config: UrcuConfiguration) -> UrcuResult {
        let shared = Shared()
        return UrcuHarness.run(
            config, backlog: { Flavor.pendingCallbacks }, watchesBacklog: config.batch != nil,
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

    /// One reader thread's loop (liburcu's `thr_reader`): per read, the section
    /// (``readOnce(_:_:_:readDuration:)``), the count and the stop test; for qsbr the
    /// quiescent state every 1024 reads, as test_urcu_qsbr's. With `--sample-every` the
    /// sampled loop instead (``UrcuReadLoop/run(sampleEvery:control:latency:every1024:burst:timedRead:)``).
    static func reader(
        _ shared: Shared, _ counter: PaddedCounter, _ control: StressControl, _ config: UrcuConfiguration
    ) -> UrcuReaderResult {
        var result = UrcuReaderResult()
        let readDuration = config.readDuration
        let bad = Flavor.withReader { rcuReader -> Int in
            control.waitForGo()
            guard let sampleEvery = config.sampleEvery else {
                return Flavor.kind == .qsbr
                    ? readLoopQSBR(rcuReader, shared.pointer, counter: counter, control: control, readDuration: readDuration)
                    : readLoop(rcuReader, shared.pointer, counter: counter, control: control, readDuration: readDuration)
            }
            let every1024 = { (reads: Int) in
                Flavor.quiescentStateIfQSBR()
                counter.publish(reads)
            }
            let (reads, bad) = UrcuReadLoop.run(
                sampleEvery: sampleEvery, control: control, latency: &result.latency, every1024: every1024,
                burst: { readBurst(rcuReader, shared.pointer, count: $0, control: control, readDuration: readDuration) },
                timedRead: { readOnce(rcuReader, shared.pointer, &$0, readDuration: readDuration) })
            counter.publish(reads)
            return bad
        }
        result.reads = counter.value.load(ordering: .relaxed)
        result.poisoned = bad
        return result
    }

    /// test_urcu's loop (memb, bp, mb): until the run stops. The pointer is borrowed, so
    /// its slot's address stays in a register, as test_urcu's global's does.
    @inline(never)
    static func readLoop(
        _ reader: borrowing RCUReader<Flavor>, _ pointer: borrowing RCUPointer<StressNode, Flavor>,
        counter: PaddedCounter, control: StressControl, readDuration: Int
    ) -> Int {
        UrcuReadLoop.plain(counter: counter, control: control) { readOnce(reader, pointer, &$0, readDuration: readDuration) }
    }

    /// test_urcu_qsbr's loop: a quiescent state every 1024 reads.
    @inline(never)
    static func readLoopQSBR(
        _ reader: borrowing RCUReader<Flavor>, _ pointer: borrowing RCUPointer<StressNode, Flavor>,
        counter: PaddedCounter, control: StressControl, readDuration: Int
    ) -> Int {
        UrcuReadLoop.plain(counter: counter, control: control, quiescentState: { Flavor.quiescentStateIfQSBR() }) {
            readOnce(reader, pointer, &$0, readDuration: readDuration)
        }
    }

    /// `count` untimed reads (``UrcuReadLoop/burst(count:control:_:)``), for the sampled loop.
    @inline(never)
    static func readBurst(
        _ reader: borrowing RCUReader<Flavor>, _ pointer: borrowing RCUPointer<StressNode, Flavor>, count: Int,
        control: StressControl, readDuration: Int
    ) -> UrcuReadBurst {
        UrcuReadLoop.burst(count: count, control: control) { readOnce(reader, pointer, &$0, readDuration: readDuration) }
    }

    /// One read section, test_urcu's: the section-ongoing assertion (live in release, as
    /// test_urcu's `assert(rcu_read_ongoing())`), the dereference, the nil test and the
    /// value check (a poisoned node is counted in `bad`, ``UrcuReadLoop/poisoned(_:)``;
    /// no node is no check, as test_urcu's `if (local_ptr)`), and `readDuration` loops
    /// (`-c`) if it is not 0.
    @inline(__always)
    static func readOnce(
        _ reader: borrowing RCUReader<Flavor>, _ pointer: borrowing RCUPointer<StressNode, Flavor>, _ bad: inout Int,
        readDuration: Int
    ) {
        reader.read { section in
            if _slowPath(!Flavor.isInReadSection) { UrcuReadLoop.sectionNotOngoing(Flavor.name) }
            pointer.withValue(in: section) { node in
                if _slowPath(node.value.load(ordering: .relaxed) != StressNode.live) { UrcuReadLoop.poisoned(&bad) }
            }
            if _slowPath(readDuration != 0) { SpinDelay.loop(readDuration) }
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
