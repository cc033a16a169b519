#!/usr/bin/env bash
# Set up (scripts/setup.sh), then run the main job on the bundled offline model (the world).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1}
.venv/bin/dpo-diff enhance "a large crimson circle on the left" --out runs/demo --overwrite "$@"
