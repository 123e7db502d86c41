@_exported import RCUTestSupport
import RCU

/// Every flavor, for tests that run the same checks on each.
let allFlavors: [any RCUFlavor.Type] = [RCUMemb.self, RCUQSBR.self, RCUBulletproof.self, RCUMemoryBarrier.self]

