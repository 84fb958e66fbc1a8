#!/usr/bin/env bash
# Regenerates the typed KServe classes in lib/imports/ from the CRDs in ../shared/reference/crds.
# Every `description` is stripped first; `cdk8s import` of a local file works offline.
# It also writes the CRDs' openAPIV3Schemas (descriptions stripped) to test/fixtures/kserve-crd-schemas.json, which the
# offline manifest validation reads, so no test needs ../shared.
# Usage: scripts/import-crds.sh [imports dir, default lib/imports] [schemas file, default test/fixtures/kserve-crd-schemas.json]
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CRDS="${CRD_DIR:-$ROOT/../shared/reference/crds}"
OUT="$(mkdir -p "${1:-$ROOT/lib/imports}" && cd "${1:-$ROOT/lib/imports}" && pwd)"
SCHEMAS="${2:-$ROOT/test/fixtures/kserve-crd-schemas.json}"
BIN="$ROOT/node_modules/.bin"

if ! compgen -G "$CRDS/*.yaml" > /dev/null; then
  echo "import-crds: no CRD files in $CRDS" >&2
  exit 1
fi

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

"$BIN/ts-node" --transpile-only --project "$ROOT/scripts/tsconfig.json" "$ROOT/scripts/strip-crd-descriptions.ts" \
  "$WORK/kserve.yaml" "$SCHEMAS" "$CRDS"/*.yaml
# cdk8s import reads and may write cdk8s.yaml in its working directory: run it in the scratch folder.
(cd "$WORK" && "$BIN/cdk8s" import --check-upgrade=false --no-save --language typescript --output "$WORK/out" kserve.yaml)

rm -f "$OUT"/*.ts
cp "$WORK"/out/*.ts "$OUT"/
echo "import-crds: wrote $(ls "$WORK"/out/*.ts | xargs -n1 basename | tr '\n' ' ')to $OUT"
