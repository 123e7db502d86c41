#!/usr/bin/env bash
# Builds the README's examples the way a user would: a client package outside this
# repository that depends on swift-rcu with the README's own `.package(...)` line, one
# executable per example (the README's code, unchanged), each run and its output compared
# with the output the README shows under it ("..." stands for any lines).
#
# The README's URL is served from a clone of this checkout through a SwiftPM mirror, tagged
# with the version the README asks for, so the client resolves exactly what the line says.
#
#   scripts/check-readme-client.sh [--keep]     (--keep leaves the client folder for a look)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
work=$(mktemp -d /tmp/swift-rcu-client.XXXXXX)
[ "${1:-}" = --keep ] && echo "client folder: $work" || trap 'rm -rf "$work"' EXIT

python3 - "$repo/README.md" "$work" <<'EOF'
import json, pathlib, re, sys
readme, work = pathlib.Path(sys.argv[1]).read_text(), pathlib.Path(sys.argv[2])
blocks = re.findall(r'<!-- client: (package|example [\w-]+) -->\n```swift\n(.*?)```\n(?:\n```text\n(.*?)```)?',
                    readme, re.S)
package = [code for kind, code, _ in blocks if kind == 'package']
examples = [(kind.split()[1], code, out) for kind, code, out in blocks if kind != 'package']
if len(package) != 1 or not examples or any(out == '' for _, _, out in examples):
    sys.exit('README: expected one "client: package" block and examples each followed by a text block')
dependency = re.search(r'\.package\(url: "([^"]+)", from: "([^"]+)"\)', package[0])
if not dependency:
    sys.exit('README: the package block has no `.package(url:, from:)` line')
products = re.findall(r'\.product\(name: "(\w+)", package: "swift-rcu"\)', package[0])
targets = []
for name, code, output in examples:
    folder = work / 'client' / 'Sources' / name
    folder.mkdir(parents=True)
    (folder / 'main.swift').write_text(code)
    (work / f'{name}.expected').write_text(output)
    deps = ', '.join(f'.product(name: "{p}", package: "swift-rcu")' for p in products)
    targets.append(f'.executableTarget(name: "{name}", dependencies: [{deps}])')
(work / 'client' / 'Package.swift').write_text(
    '// swift-tools-version: 6.1\nimport PackageDescription\n\nlet package = Package(\n'
    '    name: "client",\n    dependencies: [\n'
    f'        .package(url: "{dependency[1]}", from: "{dependency[2]}"),\n    ],\n'
    '    targets: [\n        ' + ',\n        '.join(targets) + ',\n    ]\n)\n')
(work / 'url').write_text(dependency[1]); (work / 'version').write_text(dependency[2])
(work / 'examples').write_text(''.join(name + '\n' for name, _, _ in examples))
EOF

# The package as committed (HEAD), tagged with the README's version, behind the README's URL.
git clone -q --no-hardlinks "$repo" "$work/swift-rcu"
git -C "$work/swift-rcu" tag "$(cat "$work/version")"
cd "$work/client"
swift package config set-mirror --original "$(cat "$work/url")" --mirror "$work/swift-rcu"
swift build -q >"$work/build.log" 2>&1 || { cat "$work/build.log"; echo "FAIL: the client did not build"; exit 1; }

# Expected lines must match in order; a "..." line stands for any number of lines.
compare='
import re, sys
expected = open(sys.argv[1]).read().splitlines()
actual = sys.stdin.read()
pattern = "".join(r"(?:[^\n]*\n)*?" if line == "..." else re.escape(line) + r"\n" for line in expected)
sys.exit(0 if re.fullmatch(pattern, actual.rstrip("\n") + "\n") else 1)
'
status=0
while read -r name; do
    if ! actual=$(timeout 120 ".build/debug/$name" 2>&1); then
        echo "FAIL $name: exit status $?"; echo "$actual"; status=1
    elif python3 -c "$compare" "$work/$name.expected" <<<"$actual"; then
        echo "ok   $name"
    else
        echo "FAIL $name: its output is not the README's"; echo "$actual"; status=1
    fi
done < "$work/examples"
exit $status
