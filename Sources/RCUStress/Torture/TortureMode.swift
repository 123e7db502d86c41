import ArgumentParser
import RCU

/// `rcu-stress torture --mode`: which test a run is.
///
/// `perf`, `rperf`, `uperf` and `stress` are liburcu's `rcutorture` modes
/// (tests/regression/rcutorture.h, `rcutorture_urcu_<flavor> N <mode>`);
/// `kernel` is the Linux rcutorture writer, which ages a pool of retired
/// elements through grace periods (the command's original test and its default).
enum TortureMode: String, CaseIterable, ExpressibleByArgument, Sendable {
    case kernel, perf, rperf, uperf, stress
    /// liburcu's four modes in turn.
    case all

    /// The modes this choice stands for, in report order.
    var modes: [TortureMode] {
        self == .all ? [.perf, .rperf, .uperf, .stress] : [self]
    }

    /// How many threads the run starts for `count` (the `--readers` argument, which
    /// for uperf is the number of updaters, as liburcu's first argument is).
    func threads(for count: Int) -> Int {
        switch self {
        case .kernel, .perf: count + 1
        case .rperf, .uperf: count
        case .stress: count + 1 + TortureStress<RCUMemb>.fakeUpdaters
        case .all: TortureMode.allCases.filter { $0 != .all }.map { $0.threads(for: count) }.max()!
        }
    }

    /// Whether the hidden `--broken-writer` means anything here (a mode with a writer of elements).
    var hasElementWriter: Bool { self == .kernel || self == .stress }
}
