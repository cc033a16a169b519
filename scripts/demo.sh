#!/usr/bin/env bash
# Set up (scripts/setup.sh), then run the main job on the bundled offline model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1}
.venv/bin/dpo-diff enhance "a red car parked on a quiet street" --model tiny --out runs/demo "$@"
