#!/usr/bin/env bash
# Install dpo-diff and all it needs into ./.venv. Safe to run again: it only adds what is missing.
#   - torch: the CPU build 2.13.0 unless a torch is already in the venv (see README for GPUs)
#   - dpo-diff itself (editable) with its test extras
#   - WordNet 3 data: NLTK's copy if present, else Debian's wordnet-base (apt, as root)
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
PIP=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)

if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
  "${PIP[@]}" "torch==${DPO_DIFF_TORCH_VERSION:-2.13.0}"
fi
if ! .venv/bin/python -c "import dpo_diff, pytest, torchmetrics" >/dev/null 2>&1; then
  "${PIP[@]}" -e ".[test]"
fi

wordnet_ok() {
  .venv/bin/python - <<'PY' >/dev/null 2>&1
import os, nltk
try:
    nltk.data.find("corpora/wordnet")
except LookupError:
    try:
        nltk.data.find("corpora/wordnet.zip")
    except LookupError:
        d = os.environ.get("DPO_DIFF_WORDNET_DIR") or "/usr/share/wordnet"
        raise SystemExit(0 if os.path.isfile(os.path.join(d, "data.noun")) else 1)
PY
}
if ! wordnet_ok; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing WordNet (Debian: wordnet-base wordnet-sense-index)" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wordnet-base wordnet-sense-index >/dev/null
  else
    .venv/bin/python -m nltk.downloader -q wordnet || true
  fi
  wordnet_ok || { echo "error: no WordNet data; run 'python -m nltk.downloader wordnet' or install Debian's wordnet-base" >&2; exit 1; }
fi
