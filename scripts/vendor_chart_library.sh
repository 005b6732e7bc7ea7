#!/usr/bin/env bash
# Vendor TradingView's lightweight-charts into the dashboard package.
#
# The dashboard never loads code from the internet at run time: this script
# fetches the package from the npm registry once (npm pack, in a temporary
# directory), and copies its standalone production build and its LICENSE into
# bot/data/dashboard/static/vendor/, with a VERSION file naming what was copied.
# Commit the result. Usage:
#
#     scripts/vendor_chart_library.sh            # the pinned version below
#     scripts/vendor_chart_library.sh 5.2.1      # another version
set -euo pipefail

VERSION="${1:-5.2.1}"
PACKAGE="lightweight-charts"
BUILD="dist/lightweight-charts.standalone.production.js"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEST="$ROOT/bot/data/dashboard/static/vendor"

command -v npm >/dev/null || { echo "npm is required (apt-get install -y npm)" >&2; exit 1; }
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

(cd "$WORK" && npm pack --silent "$PACKAGE@$VERSION" >/dev/null)
tar -xzf "$WORK/$PACKAGE-$VERSION.tgz" -C "$WORK"
[[ -f "$WORK/package/$BUILD" ]] || { echo "$PACKAGE $VERSION has no $BUILD" >&2; exit 1; }

mkdir -p "$DEST"
cp "$WORK/package/$BUILD" "$DEST/lightweight-charts.standalone.production.js"
cp "$WORK/package/LICENSE" "$DEST/lightweight-charts.LICENSE"
SHA="$(sha256sum "$DEST/lightweight-charts.standalone.production.js" | cut -d' ' -f1)"
cat > "$DEST/VERSION" <<NOTE
$PACKAGE $VERSION (npm registry), file $BUILD
sha256 $SHA
license Apache-2.0, see lightweight-charts.LICENSE
vendored by scripts/vendor_chart_library.sh
NOTE
echo "vendored $PACKAGE $VERSION into $DEST"
