#!/usr/bin/env bash
# The README's main job: install, a small federated PRISM run on MNIST (simulated clients),
# export to a compact ONNX generator, generate a picture with onnxruntime only, and score it.
# Data: $PRISM_EDGE_DATA (default ../shared/data). Outputs: runs/quickstart/.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
. .venv/bin/activate
pip install -q torch==2.13.0
pip install -q -e ".[all]"
export PRISM_EDGE_DATA=${PRISM_EDGE_DATA:-../shared/data}
out=runs/quickstart
prism-edge train --dataset mnist --clients 4 --split shards:4 --rounds 4 --local-steps 50 \
  --seed 42 --sample-every 2 -o "$out"
prism-edge inspect "$out/final.bits"
prism-edge export --seed 42 --mask "$out/final.bits" -o "$out/generator.onnx"
prism-edge generate --model "$out/generator.onnx" -n 64 --seed 0 -o "$out/samples.png"
prism-edge generate --model "$out/generator.onnx" --by-class -n 8 -o "$out/digits.png"
prism-edge evaluate "$out/generator.onnx" -n 2000 --json "$out/eval.json" --png "$out/eval.png"
echo "done: pictures in $out/ (samples.png, digits.png: a row per digit, final.png, samples/), metrics in $out/metrics.jsonl"
