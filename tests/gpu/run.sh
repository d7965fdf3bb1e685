#!/usr/bin/env bash
# The GPU checks of issue 18 in one short call, on a machine with a CUDA device (a few minutes):
#   tests/gpu/run.sh            (results under $OUT, else build/gpu)
# Needs the project installed with the torch and rdma extras (make install), Java for the Kafka test.
# Without a CUDA device every test skips; the script then exits 0 after saying so.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
RESULTS=${OUT:-build/gpu}
mkdir -p "$RESULTS"
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')" | tee "$RESULTS/device.txt"
"$PY" -c "from freight.connectors import transfer; print('rdma extra (NIXL):', transfer.available())" \
  | tee -a "$RESULTS/device.txt"
"$PY" -m pytest tests/gpu tests/integration/test_connectors_tensor.py -m gpu -q -rs --timeout 300 \
  -p no:cacheprovider 2>&1 | tee "$RESULTS/pytest.txt"
# The tensor benchmark with the CUDA rows (CUDA IPC, the engine on device memory).
"$PY" -m freight.cli bench tensor --size 64 --size 1024 -n 5 --out "$RESULTS" | tee "$RESULTS/bench.txt"
