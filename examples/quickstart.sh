#!/usr/bin/env bash
# The README's main job: install, then seed -> generator -> mask -> inspect -> picture.
# Data comes from $PRISM_EDGE_DATA (default ../shared/data); outputs go to runs/quickstart/.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
. .venv/bin/activate
pip install -q torch==2.13.0
pip install -q -e ".[all]"
export PRISM_EDGE_DATA=${PRISM_EDGE_DATA:-../shared/data}
out=runs/quickstart
mkdir -p "$out"
prism-edge init --arch mnist-small --seed 42 -o "$out/init.bits" --png "$out/init.png"
prism-edge inspect "$out/init.bits"
echo "done: see $out/"
