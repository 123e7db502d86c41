/// One JSON object on one line, with keys in insertion order (so output is
/// stable and diffable), for the subcommands' `--json` output.
struct JSONLine {
    private var fields: [String] = []

    /// Appends `"key":value` for an integer.
    mutating func add(_ key: String, _ value: Int) {
        fields.append("\(Self.quoted(key)):\(value)")
    }

    /// Appends `"key":value` for an unsigned integer, or `null`.
    mutating func add(_ key: String, _ value: UInt64?) {
        fields.append("\(Self.quoted(key)):\(value.map(String.init) ?? "null")")
    }

    /// Appends `"key":value` for a number rounded to three decimals (`null` if not finite).
    mutating func add(_ key: String, _ value: Double) {
        let text = value.isFinite ? "\((value * 1000).rounded() / 1000)" : "null"
        fields.append("\(Self.quoted(key)):\(text)")
    }

    /// Appends `"key":true|false`.
    mutating func add(_ key: String, _ value: Bool) {
        fields.append("\(Self.quoted(key)):\(value)")
    }

    /// Appends `"key":"value"`.
    mutating func add(_ key: String, _ value: String) {
        fields.append("\(Self.quoted(key)):\(Self.quoted(value))")
    }

    /// Appends `"key":[n,...]`.
    mutating func add(_ key: String, _ values: [Int]) {
        fields.append("\(Self.quoted(key)):[\(values.map(String.init).joined(separator: ","))]")
    }

    /// The object: `{"key":value,...}`.
    var text: String { "{" + fields.joined(separator: ",") + "}" }

    /// `text` as a JSON string literal.
    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}

/// Fixed-width columns for the human tables and the `SUMMARY` line (`printf`'s `%6lu`, `%-25s`).
enum Columns {
    /// `text` right-aligned in `width` columns.
    static func right(_ text: String, _ width: Int) -> String {
        String(repeating: " ", count: max(0, width - text.count)) + text
    }

    /// `text` left-aligned in `width` columns.
    static func left(_ text: String, _ width: Int) -> String {
        text + String(repeating: " ", count: max(0, width - text.count))
    }

    /// `value` in scientific notation with two decimals (`4.50e8`), as BENCHMARKS.md quotes rates.
    static func scientific(_ value: Double) -> String {
        guard value.isFinite, value > 0 else { return value == 0 ? "0" : "\(value)" }
        var exponent = 0
        var mantissa = value
        while mantissa >= 10 { mantissa /= 10; exponent += 1 }
        while mantissa < 1 { mantissa *= 10; exponent -= 1 }
        let hundredths = Int((mantissa * 100).rounded())
        let (whole, fraction) = hundredths >= 1000 ? (1, 0) : (hundredths / 100, hundredths % 100)
        let adjusted = hundredths >= 1000 ? exponent + 1 : exponent
        return "\(whole).\(fraction < 10 ? "0" : "")\(fraction)e\(adjusted)"
    }
}
