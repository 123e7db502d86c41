#!/usr/bin/env bash
# Builds each documented module's symbol graph and converts its DocC catalog with the
# toolchain's `docc`, failing on any warning (a broken or ambiguous symbol link, a missing
# page). Usage: scripts/check-docs.sh [Module ...] (default: every Sources/*/*.docc).
set -euo pipefail
cd "$(dirname "$0")/.."

modules=("$@")
if [ ${#modules[@]} -eq 0 ]; then
    for catalog in Sources/*/*.docc; do modules+=("$(basename "$(dirname "$catalog")")"); done
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
for module in "${modules[@]}"; do
    graphs="$work/graphs-$module"
    mkdir -p "$graphs"
    swift build -c release --target "$module" --scratch-path .build-docs \
        -Xswiftc -emit-symbol-graph -Xswiftc -emit-symbol-graph-dir -Xswiftc "$graphs" >"$work/build.log" 2>&1 ||
        { cat "$work/build.log"; exit 1; }
    catalog=$(echo Sources/"$module"/*.docc)
    # Only this module's graph: dependencies' graphs would document their symbols here too.
    find "$graphs" -name '*.symbols.json' ! -name "$module.symbols.json" ! -name "$module@*.symbols.json" -delete
    docc convert "$catalog" --additional-symbol-graph-dir "$graphs" --fallback-display-name "$module" \
        --fallback-bundle-identifier "$module" --output-path "$work/out-$module" >"$work/docc.log" 2>&1 || true
    if grep -qiE "warning|error" "$work/docc.log"; then
        echo "== $module: DocC warnings"
        grep -iE -A8 "warning|error" "$work/docc.log"
        status=1
    else
        echo "== $module: documentation builds without warnings"
    fi
done
exit $status
