/// One line of the `read-cost` report.
struct ReadCostResult {
    /// `memb`, `qsbr`, `bp`, `mb`, or a lock baseline (`rwlock`, `mutex`).
    let name: String
    /// The C loop (`CReference`), nanoseconds per read-side pair.
    let cNanoseconds: Double
    /// The Swift API loop; `nil` for the lock baselines, which have no Swift side.
    let swiftNanoseconds: Double?
    /// The generic `Flavor.read` section outside a reader scope (for qsbr: online and
    /// offline around each section); `swiftNanoseconds` is the loop in a `withReader` scope.
    var genericSwiftNanoseconds: Double? = nil

    /// Swift over C.
    var ratio: Double? { swiftNanoseconds.map { $0 / cNanoseconds } }

    /// The JSON line: `{"flavor":"memb","c_ns":0.99,"swift_ns":1.01,"ratio":1.02}`,
    /// with `"generic_swift_ns"` appended for the flavors, or
    /// `{"baseline":"rwlock","c_ns":6.8}` for a lock baseline.
    var jsonLine: String {
        guard let swiftNanoseconds, let ratio else {
            return #"{"baseline":"\#(name)","c_ns":\#(Self.json(cNanoseconds))}"#
        }
        var line = #"{"flavor":"\#(name)","c_ns":\#(Self.json(cNanoseconds)),"swift_ns":\#(Self.json(swiftNanoseconds)),"ratio":\#(Self.json(ratio))"#
        if let genericSwiftNanoseconds {
            line += #","generic_swift_ns":\#(Self.json(genericSwiftNanoseconds))"#
        }
        return line + "}"
    }

    /// A JSON number rounded to three decimals.
    static func json(_ value: Double) -> String {
        guard value.isFinite else { return "null" }
        return "\((value * 1000).rounded() / 1000)"
    }

    /// `value` with exactly `digits` decimals, right-aligned in `width` columns.
    static func fixed(_ value: Double, digits: Int = 3, width: Int) -> String {
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let scaled = Int((value * scale).rounded())
        let whole = String(scaled / Int(scale))
        var fraction = String(abs(scaled) % Int(scale))
        fraction = String(repeating: "0", count: digits - fraction.count) + fraction
        let sign = scaled < 0 && scaled / Int(scale) == 0 ? "-" : ""
        return pad(sign + whole + "." + fraction, width: width)
    }

    static func pad(_ text: String, width: Int) -> String {
        String(repeating: " ", count: max(0, width - text.count)) + text
    }

    /// The human table header and rows.
    static let header = "flavor   C ns/read   Swift ns/read   Swift/C"

    var tableRows: [String] {
        let label = name.padding(8)
        guard let swiftNanoseconds, let ratio else {
            return [label + Self.fixed(cNanoseconds, width: 11) + Self.pad("-", width: 16) + Self.pad("-", width: 10)]
        }
        var rows = [
            label + Self.fixed(cNanoseconds, width: 11) + Self.fixed(swiftNanoseconds, width: 16)
                + Self.fixed(ratio, width: 10)
        ]
        if let genericSwiftNanoseconds {
            rows[0] += "   (withReader)"
            rows.append(
                "".padding(8) + Self.pad("", width: 11) + Self.fixed(genericSwiftNanoseconds, width: 16)
                    + Self.fixed(genericSwiftNanoseconds / cNanoseconds, width: 10) + "   (\(name) generic read)")
        }
        return rows
    }
}

extension String {
    /// The string left-aligned in `width` columns.
    fileprivate func padding(_ width: Int) -> String {
        self + String(repeating: " ", count: max(0, width - count))
    }
}
