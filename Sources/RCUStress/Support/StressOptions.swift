import ArgumentParser

/// `--json`, shared by every subcommand: one JSON object per result line instead of the
/// human report, so scripts and CI can read it.
struct JSONOutputOption: ParsableArguments {
    @Flag(help: "Print one JSON object per result line instead of the human report.")
    var json = false
}

/// The check every `--duration` (and `urcu`'s DURATION) gets: a finite number of seconds
/// above zero and at most `maximum`.
enum DurationBound {
    static func validate(_ seconds: Double, name: String = "--duration", maximum: Double = 86_400) throws {
        guard seconds.isFinite, seconds > 0, seconds <= maximum else {
            throw ValidationError("\(name) must be a number of seconds in (0, \(Int(maximum))], not \(seconds).")
        }
    }
}
