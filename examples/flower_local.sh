#!/usr/bin/env bash
# A real Flower deployment on one machine: one SuperLink, three device SuperNodes (each its own
# MNIST partition), `flwr run` for a few rounds, then export. Every process is stopped at the end.
# Run from the repository root after `pip install -e ".[all]"`.
set -euo pipefail
cd "$(dirname "$0")/.."
export PRISM_EDGE_DATA=${PRISM_EDGE_DATA:-../shared/data}
export FLWR_HOME=${FLWR_HOME:-$PWD/runs/flower-home}
export PATH="$(dirname "$(command -v python)"):$PATH"
mkdir -p "$FLWR_HOME" runs/flower-logs
cat > "$FLWR_HOME/config.toml" <<TOML
[superlink]
default = "local-loop"

[superlink.local-loop]
address = "127.0.0.1:8000"
insecure = true
TOML
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
flower-superlink --insecure --disable-runtime-dependency-installation --port 8000 \
  > runs/flower-logs/superlink.log 2>&1 & pids+=($!)
sleep 5
for i in 0 1 2; do
  prism-edge device join --superlink 127.0.0.1:8000 --partition-id "$i" --threads 1 \
    --port $((9094 + i)) > "runs/flower-logs/device$i.log" 2>&1 & pids+=($!)
done
sleep 5
flwr run . local-loop --stream \
  --run-config "num-clients=3 rounds=3 local-steps=50 split='shards:2' out-dir='runs/flower'"
prism-edge export --seed 42 --mask runs/flower/final.bits -o runs/flower/generator.onnx
prism-edge device generate --model runs/flower/generator.onnx -n 64 -o runs/flower/samples.png
echo "done: runs/flower/ (metrics.jsonl has the bytes each device sent and received)"
