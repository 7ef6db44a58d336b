#!/usr/bin/env bash
# Every GPU-only measurement in one go, for a machine with a CUDA GPU (a lab GPU, or the device machine
# a session is lent): the attention benchmark, GPT-2-small training throughput three ways, and the whole
# `gpu` preset course. Each writes its output under $OUT (default gpu_out/); bench/RESULTS.md records them
# with the hardware named.
#
#   OUT=gpu_out bash bench/gpu_session.sh
#
# It assumes torch with CUDA and the package are installed (pip install -r requirements.txt -e .).
set -uo pipefail
OUT=${OUT:-gpu_out}
mkdir -p "$OUT"
cd "$(dirname "$0")/.."
{ nvidia-smi; python -c "import torch; print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name())"; } \
    > "$OUT/hardware.txt" 2>&1
python -m minillm doctor --preset gpu > "$OUT/doctor.txt" 2>&1
python bench/attention.py > "$OUT/attention.txt" 2>&1
python bench/train_throughput.py --device cuda > "$OUT/train_throughput.txt" 2>&1
python -m minillm course --preset gpu --out "$OUT/runs/gpu" > "$OUT/course.txt" 2>&1
cp "$OUT/runs/gpu/metrics.json" "$OUT/runs/gpu/report.md" "$OUT/" 2>/dev/null
rm -rf "$OUT/runs"       # the checkpoints are large; the figures are in metrics.json and report.md
tail -n 3 "$OUT"/*.txt
