import Foundation
import XCTest
@testable import Lockdep

/// The kernel's lib/locking-selftest.c, every `dotest()` of it (a 2025 version), translated to
/// Lockdep's API with the kernel's expected SUCCESS/FAILURE. Prints the table in the kernel's
/// boot-log form, one line per case with the expected and observed result, and the counts.
///
/// The test fails when a case disagrees with the kernel and is not in ``knownDisagreements``,
/// or when a known disagreement has gone (fixing the engine must shrink the set).
final class KernelSelftestTests: LockdepTestCase {
    /// Every case where Lockdep's answer differs from the kernel's today, with what the engine
    /// does wrong. The test asserts this is exactly the set of disagreeing cases: none is left
    /// (the last 41 were fixed by marking held locks on irq enable, read-aware irq-inversion
    /// searches, shared readers in the cycle search, nest-lock semantics and per-CPU classes).
    static let knownDisagreements: [String: String] = [:]

    struct Outcome {
        let kase: KCase
        let observedFailure: Bool?   // nil: not run
        let detail: String
        var agrees: Bool { observedFailure == kase.expectFailure }
    }

    func run(_ kase: KCase) -> Outcome {
        guard case .run(let body) = kase.body else { return Outcome(kase: kase, observedFailure: nil, detail: "") }
        Lockdep.resetForTesting()
        collector.clear()
        collector.install()
        var env: KEnv? = KEnv(readers: kase.readers)
        body(env!)
        let reports = collector.reports
        let warnings = env!.warnings
        // Tear down silently: the case may end holding locks (the kernel's do too).
        Lockdep.reportHandler = .custom { _ in }
        for step in env!.cleanup { step() }
        Lockdep.resetForTesting()
        env = nil
        collector.install()
        var detail = reports.map { $0.kind.rawValue }.joined(separator: ",")
        if !warnings.isEmpty { detail += (detail.isEmpty ? "" : "; ") + "WARN_ON: " + warnings.joined(separator: "; ") }
        return Outcome(kase: kase, observedFailure: !reports.isEmpty || !warnings.isEmpty, detail: detail)
    }

    static func result(_ failure: Bool) -> String { failure ? "FAILURE" : "SUCCESS" }

    static func pad(_ s: String, _ width: Int, left: Bool = true) -> String {
        s.count >= width ? s : (left ? String(repeating: " ", count: width - s.count) + s : s + String(repeating: " ", count: width - s.count))
    }

    func testKernelLockingSelftest() throws {
        try XCTSkipUnless(Lockdep.checksCompiledIn, "the port needs Lockdep's checks compiled in")
        let cases = KernelSelftest.cases
        XCTAssertEqual(Set(cases.map(\.name)).count, cases.count, "case names must be unique")
        var lines: [String] = []
        lines.append("------------------------")
        lines.append("| Locking API testsuite (lib/locking-selftest.c, translated):")
        lines.append("----------------------------------------------------------------------------")
        var outcomes: [Outcome] = []
        var lastFamily = ""
        for kase in cases {
            if kase.family != lastFamily {
                lines.append("  --------------------------------------------------------------------------")
                lines.append("  | \(kase.family)")
                lastFamily = kase.family
            }
            let o = run(kase)
            outcomes.append(o)
            var line = Self.pad(kase.row, 33) + ":" + Self.pad(kase.column, 12, left: false) + "|"
            switch kase.body {
            case .run:
                let observed = o.observedFailure!
                line += o.agrees ? "  ok  |" : "FAILED|"
                line += " expected \(Self.result(kase.expectFailure)), observed \(Self.result(observed))"
                line += " " + kase.name
                if !o.detail.isEmpty { line += " [\(o.detail)]" }
                if !o.agrees { line += "  -- " + (Self.knownDisagreements[kase.name] ?? "NEW DISAGREEMENT") }
            case .skipped(let why):
                line += " skip | expected \(Self.result(kase.expectFailure)), not run \(kase.name): \(why)"
            case .needsEngine(let what):
                line += "engine| expected \(Self.result(kase.expectFailure)), not run \(kase.name): needs engine: \(what)"
            }
            if let note = kase.note { line += " (\(note))" }
            lines.append(line)
        }

        // Counts per family.
        var families: [String] = []
        var counts: [String: (cases: Int, agree: Int, disagree: Int, skipped: Int, engine: Int)] = [:]
        for o in outcomes {
            let f = o.kase.family
            if counts[f] == nil { families.append(f); counts[f] = (0, 0, 0, 0, 0) }
            counts[f]!.cases += 1
            switch o.kase.body {
            case .run: if o.agrees { counts[f]!.agree += 1 } else { counts[f]!.disagree += 1 }
            case .skipped: counts[f]!.skipped += 1
            case .needsEngine: counts[f]!.engine += 1
            }
        }
        lines.append("  --------------------------------------------------------------------------")
        lines.append(Self.pad("family", 33) + ": cases agree disagree skipped needs-engine")
        for f in families {
            let c = counts[f]!
            lines.append(Self.pad(f, 33) + ": " + [c.cases, c.agree, c.disagree, c.skipped, c.engine]
                .map { Self.pad(String($0), 5) }.joined(separator: " "))
        }
        let ran = outcomes.filter { $0.observedFailure != nil }
        let disagreeing = ran.filter { !$0.agrees }
        let skipped = outcomes.filter { if case .skipped = $0.kase.body { true } else { false } }.count
        let engine = outcomes.count - ran.count - skipped
        lines.append("-----------------------------------------------------------------")
        if disagreeing.isEmpty {
            lines.append("Good, all \(ran.count) testcases passed! | (\(skipped) skipped, \(engine) need engine support)")
        } else {
            lines.append("BUG: \(Self.pad(String(disagreeing.count), 3)) unexpected failures (out of \(Self.pad(String(ran.count), 3))) - "
                         + "\(outcomes.count) cases: \(ran.count - disagreeing.count) agree, \(disagreeing.count) disagree, "
                         + "\(skipped) skipped, \(engine) need engine support |")
        }
        lines.append("-----------------------------------------------------------------")
        print(lines.joined(separator: "\n"))

        let observed = Set(disagreeing.map(\.kase.name))
        let known = Set(Self.knownDisagreements.keys)
        for name in observed.subtracting(known).sorted() {
            XCTFail("new disagreement with the kernel: \(name)")
        }
        for name in known.subtracting(observed).sorted() {
            XCTFail("known disagreement \(name) now agrees with the kernel (or is not run): remove it from knownDisagreements")
        }
    }
}
