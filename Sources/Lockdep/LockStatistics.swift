/// Per-class lock statistics (the kernel's `lock_stat`): acquisitions, contentions, wait and
/// hold times, and the sites that contended most.
///
/// Collection is off by default; turn it on with ``Lockdep/collectsStatistics``. Times are
/// measured on `CLOCK_MONOTONIC`. Only compiled-in builds collect.
public struct LockStatistics: Sendable, CustomStringConvertible {
    /// The class name.
    public var name: String
    /// Acquisitions while collection was on.
    public var acquisitions: Int
    /// Acquisitions that found the lock taken and had to wait.
    public var contentions: Int
    /// Shortest, longest and total wait of the contended acquisitions (zero without contentions).
    public var waitMin: Duration, waitMax: Duration, waitTotal: Duration
    /// Shortest, longest and total hold time (zero without measured holds).
    public var holdMin: Duration, holdMax: Duration, holdTotal: Duration
    /// Number of holds measured.
    public var holds: Int
    /// The sites that contended, most contentions first (at most 4), with their counts.
    public var topContendingSites: [(site: String, count: Int)]

    /// One table row.
    public var description: String { LockStatistics.row(self) }

    static func row(_ s: LockStatistics) -> String {
        func pad(_ v: String, _ w: Int) -> String { String(repeating: " ", count: max(0, w - v.count)) + v }
        func us(_ time: Duration) -> String {
            let (seconds, attoseconds) = time.components
            let v = Double(seconds) * 1e6 + Double(attoseconds) / 1e12
            return String(Int(v)) + "." + String(Int((v - Double(Int(v))) * 100)).padded2()
        }
        let name = s.name.count > 30 ? String(s.name.prefix(30)) : s.name + String(repeating: " ", count: 30 - s.name.count)
        return name + pad(String(s.contentions), 12) + pad(us(s.waitMin), 12) + pad(us(s.waitMax), 12)
            + pad(us(s.waitTotal), 14) + pad(String(s.acquisitions), 14) + pad(us(s.holdMin), 12)
            + pad(us(s.holdMax), 12) + pad(us(s.holdTotal), 14)
    }
}

extension String {
    fileprivate func padded2() -> String { count >= 2 ? self : String(repeating: "0", count: 2 - count) + self }
}

extension Lockdep {
    /// Whether lock statistics are collected (off by default; costs a clock read per acquire).
    public static var collectsStatistics: Bool {
        get { graph.withLock { $0.statsEnabled } }
        set { Engine.setStatistics(newValue) }
    }

    /// The statistics collected so far, most contended classes first.
    ///
    /// - Returns: One value per class that was acquired while collection was on.
    public static func statistics() -> [LockStatistics] {
        let raw = Engine.statistics.withLock { $0 }
        let names = graph.withLock { $0.classNames }
        func time(_ nanoseconds: UInt64) -> Duration { .nanoseconds(Int64(clamping: nanoseconds)) }
        return raw.map { id, c in
            LockStatistics(name: Int(id) < names.count ? names[Int(id)] : "class#\(id)", acquisitions: c.acquisitions,
                           contentions: c.contentions,
                           waitMin: c.contentions == 0 ? .zero : time(c.waitMin), waitMax: time(c.waitMax),
                           waitTotal: time(c.waitTotal),
                           holdMin: c.holds == 0 ? .zero : time(c.holdMin), holdMax: time(c.holdMax),
                           holdTotal: time(c.holdTotal), holds: c.holds,
                           topContendingSites: c.contendingSites.sorted { $0.value > $1.value || ($0.value == $1.value && $0.key < $1.key) }
                               .prefix(4).map { (site: $0.key, count: $0.value) })
        }.sorted { $0.contentions > $1.contentions || ($0.contentions == $1.contentions && $0.name < $1.name) }
    }

    /// The statistics as a printable table in the shape of `/proc/lock_stat` (times in microseconds).
    ///
    /// - Returns: The table, with each class's contending sites below its row.
    public static func statisticsTable() -> String {
        var s = "lock_stat version 0.4 (swift-rcu Lockdep)\n"
        s += "class name                     contentions    waittime-min waittime-max waittime-total  acquisitions  holdtime-min holdtime-max holdtime-total\n"
        s += String(repeating: "-", count: 142) + "\n"
        for stat in statistics() {
            s += stat.description + "\n"
            for (site, count) in stat.topContendingSites {
                s += "                               " + String(count) + "  [" + site + "]\n"
            }
        }
        return s
    }

    /// Clears the collected statistics.
    public static func resetStatistics() {
        Engine.statistics.withLock { $0 = [:] }
    }
}
