@_exported import RCUTestSupport
import RCU

/// Every flavor, for tests that run the same checks on each.
let allFlavors: [any RCUFlavor.Type] = [RCUMemb.self, RCUQSBR.self, RCUBulletproof.self, RCUMemoryBarrier.self]


/// Runs `body` with stall reports collected (and the threshold set to `threshold`, when
/// given), then puts the detector's handler and threshold back.
func withCollectedStalls<Result>(
    threshold: Duration? = nil, _ body: (Locked<[RCUStallDetector.Stall]>) throws -> Result
) rethrows -> Result {
    let previousThreshold = RCUStallDetector.threshold
    let stalls = Locked<[RCUStallDetector.Stall]>([])
    let previousHandler = RCUStallDetector.reportHandler
    RCUStallDetector.reportHandler = .custom { stall in stalls.withLock { $0.append(stall) } }
    defer {
        RCUStallDetector.reportHandler = previousHandler
        RCUStallDetector.threshold = previousThreshold
    }
    if let threshold { RCUStallDetector.threshold = threshold }
    return try body(stalls)
}
