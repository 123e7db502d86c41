import ArgumentParser
import CReference
import RCU

/// One loop of `read-cost`, run alone (`--loop`), so that an instruction counter
/// (`scripts/check-read-instructions.sh`, valgrind's callgrind) can attribute every
/// instruction of the process's read sections to it. Loops the optimiser merged
/// (identical machine code) would otherwise share one count.
enum ReadCostLoop: String, CaseIterable, ExpressibleByArgument {
    /// liburcu's bare read side, as a C user writes it (``CReference``).
    case c
    /// The C loop with the registration check of the Swift API's generic read (memb, mb).
    case cChecked = "c-checked"
    /// qsbr: the C loop with the Swift section's guarantees, on an online thread (a scope).
    case cGuarded = "c-guarded"
    /// qsbr: the same on an offline thread (a generic section outside a scope).
    case cGuardedOffline = "c-guarded-offline"
    /// qsbr: liburcu's online and offline around each read, on an offline thread.
    case cOnlineOffline = "c-online-offline"
    /// `reader.read { ... }` in a `withReader` scope.
    case reader
    /// The generic `Flavor.read { ... }` outside a scope.
    case generic

    /// The C loop this case names for `flavor`, or `nil` for the Swift loops and for a
    /// C loop the flavor does not have.
    func cLoop(_ flavor: LiburcuFlavor) -> CReadLoop? {
        switch (self, flavor) {
        case (.c, .memb): creference_memb_read_loop
        case (.c, .qsbr): creference_qsbr_read_loop
        case (.c, .bp): creference_bp_read_loop
        case (.c, .mb): creference_mb_read_loop
        case (.cChecked, .memb): creference_memb_checked_read_loop
        case (.cChecked, .mb): creference_mb_checked_read_loop
        case (.cGuarded, .qsbr): { creference_qsbr_guarded_read_loop($0, $1, true) }
        case (.cGuardedOffline, .qsbr): { creference_qsbr_guarded_read_loop($0, $1, false) }
        case (.cOnlineOffline, .qsbr): creference_qsbr_online_offline_read_loop
        default: nil
        }
    }
}

extension ReadCostBenchmarks {
    /// Runs `loop` alone, with the measurement's warm-up and rounds.
    /// - Returns: Its fastest nanoseconds per read.
    static func single<Flavor: RCUFlavor>(
        _ flavor: Flavor.Type, _ loop: ReadCostLoop, cLoop: CReadLoop?, _ measurement: ReadCostMeasurement
    ) throws(ReadCostError) -> Double {
        let pointer = RCUPointer<BenchNode, Flavor>(BenchNode.one())
        let ns = try withCSlot { cSlot throws(ReadCostError) in
            try measurement.nanosecondsPerRead(sides: 1) { _, iterations in
                switch loop {
                case .reader:
                    Flavor.withReader { reader in ReadCostLoops.swiftReaderLoop(reader, pointer, iterations: iterations) }
                case .generic:
                    ReadCostLoops.swiftReadLoop(pointer, iterations: iterations)
                default:
                    Int(truncatingIfNeeded: cLoop!(cSlot, UInt64(iterations)))
                }
            }
        }
        return ns[0]
    }

    /// `read-cost --flavor F --loop L`: the JSON line `{"flavor":"qsbr","loop":"reader","ns":0.41}`.
    static func singleLine(_ choice: FlavorChoice, _ loop: ReadCostLoop, _ measurement: ReadCostMeasurement) throws -> String {
        guard let flavor = choice.flavor else {
            throw ValidationError("--loop needs one --flavor (memb, qsbr, bp or mb), not \(choice.name).")
        }
        let cLoop = loop.cLoop(flavor)
        if cLoop == nil && loop != .reader && loop != .generic {
            throw ValidationError("--loop \(loop.rawValue) does not exist for --flavor \(choice.name).")
        }
        let ns: Double =
            switch flavor {
            case .memb: try single(RCUMemb.self, loop, cLoop: cLoop, measurement)
            case .qsbr: try single(RCUQSBR.self, loop, cLoop: cLoop, measurement)
            case .bp: try single(RCUBulletproof.self, loop, cLoop: cLoop, measurement)
            case .mb: try single(RCUMemoryBarrier.self, loop, cLoop: cLoop, measurement)
            }
        return #"{"flavor":"\#(choice.name)","loop":"\#(loop.rawValue)","ns":\#(ReadCostResult.json(ns))}"#
    }
}
