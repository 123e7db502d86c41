#!/usr/bin/env bash
# Instructions and L1 data-cache misses per hash-map lookup, counted by callgrind (which,
# unlike timing, does not drift on a shared machine): `Dictionary` against `RCUDictionary`
# and `RCUHashMap` (each lookup in its own memb read section, as `rcu-stress containers`
# does), and `RCUDictionary` with all lookups in one section, and after 14000 replacements
# (each leaves a tombstone on its key's probe run, as `rcu-stress containers`'s writer does
# until a rebuild). 10000 Int keys, N random present keys (default 200000), the same keys for
# every variant, single thread.
#
# Builds a throwaway package outside the repository that depends on it, strips the debug
# info from the binary (valgrind 3.19 cannot read the Swift 6.3 toolchain's DWARF) and
# counts only inside each variant's lookup loop (--toggle-collect), which runs 5 times.
# Usage: Benchmarks/hashmap-instructions.sh [N]
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
lookups=${1:-200000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/Sources/HashMapInstructions"
cat >"$work/Package.swift" <<EOF
// swift-tools-version: 6.1
import PackageDescription
let package = Package(
    name: "HashMapInstructions",
    dependencies: [.package(name: "swift-rcu", path: "$repo")],
    targets: [.executableTarget(name: "HashMapInstructions", dependencies: [.product(name: "RCU", package: "swift-rcu")])]
)
EOF
cat >"$work/Sources/HashMapInstructions/main.swift" <<'EOF'
import RCU

let keyCount = 10_000
let lookups = Int(CommandLine.arguments[1])!
let variant = CommandLine.arguments[2]
var state: UInt64 = 0x9E37_79B9_7F4A_7C15
let keys: [Int] = (0..<lookups).map { _ in
    state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
    return Int(truncatingIfNeeded: ((state >> 32) &* UInt64(keyCount)) >> 32)
}
let dictionary = Dictionary(uniqueKeysWithValues: (0..<keyCount).map { ($0, $0) })
let rcuDictionary = RCUDictionary<Int, Int, RCUMemb>(minimumCapacity: keyCount)
let hashMap = RCUHashMap<Int, Int, RCUMemb>(minimumCapacity: keyCount)
for key in 0..<keyCount { rcuDictionary.insert(key, forKey: key); hashMap.insert(key, forKey: key) }
if variant == "RCUDictionary-after-replaces" {
    for index in 0..<14000 { rcuDictionary.updateValue(keys[index % keys.count], forKey: keys[index % keys.count]) }
}

@inline(never) func lookupsDictionary(_ keys: [Int]) -> Int {
    var sum = 0
    for key in keys { sum &+= dictionary[key] ?? 0 }
    return sum
}
@inline(never) func lookupsRCUDictionary(_ keys: [Int]) -> Int {
    var sum = 0
    for key in keys { sum &+= RCUMemb.read { rcuDictionary.value(forKey: key, in: $0) ?? 0 } }
    return sum
}
@inline(never) func lookupsRCUDictionaryOneSection(_ keys: [Int]) -> Int {
    RCUMemb.read { section in
        var sum = 0
        for key in keys { sum &+= rcuDictionary.value(forKey: key, in: section) ?? 0 }
        return sum
    }
}
@inline(never) func lookupsRCUHashMap(_ keys: [Int]) -> Int {
    var sum = 0
    for key in keys { sum &+= RCUMemb.read { hashMap.value(forKey: key, in: $0) ?? 0 } }
    return sum
}
_ = RCUMemb.read { _ in 0 }   // registers the thread outside the counted loops
let body: ([Int]) -> Int =
    switch variant {
    case "Dictionary": lookupsDictionary
    case "RCUDictionary", "RCUDictionary-after-replaces": lookupsRCUDictionary
    case "RCUDictionary-one-section": lookupsRCUDictionaryOneSection
    default: lookupsRCUHashMap
    }
var sum = 0
for _ in 0..<5 { sum &+= body(keys) }
print(sum)
EOF
swift build -c release --package-path "$work" >/dev/null
strip --strip-debug -o "$work/counted" "$work/.build/release/HashMapInstructions"
echo "per lookup ($((lookups * 5)) lookups, 10000 Int keys): instructions, L1 data read misses"
for variant in Dictionary RCUDictionary RCUDictionary-one-section RCUDictionary-after-replaces RCUHashMap; do
    valgrind --tool=callgrind --cache-sim=yes --toggle-collect='*lookups*' \
        --callgrind-out-file="$work/$variant.out" "$work/counted" "$lookups" "$variant" >/dev/null 2>&1
    # The totals line: Ir Dr Dw I1mr D1mr ..., comma-grouped, nonzero ones followed by "(100.0%)".
    callgrind_annotate "$work/$variant.out" 2>/dev/null | grep -m1 'PROGRAM TOTALS' | tr -d ',' |
        awk -v n=$((lookups * 5)) -v v="$variant" '{
            k = 0; for (i = 1; i <= NF; i++) if ($i !~ /^\(/) count[++k] = $i
            printf "  %-28s %7.1f  %5.2f\n", v, count[1] / n, count[5] / n }'
done
