#!/usr/bin/env bash
# Build the peer environment for the benchmarks: LLaMA-Factory 0.9.5 from PyPI in .bench/venv.
#
# Why each step:
#  - torch==2.13.0 as a constraint: without it pip resolves a newer CUDA torch (gigabytes).
#  - torchvision/torchaudio are removed: their builds do not load beside torch 2.13 on this machine.
#  - an empty `torchaudio` stub is installed: llamafactory imports torchaudio at module level
#    (mm_plugin) without using it for text models.
#  - run LLaMA-Factory with DISABLE_VERSION_CHECK=1 (its pinned transformers range is older).
# Usage: bash bench/setup_peer.sh   (idempotent; ~3-5 minutes from an empty cache)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="$ROOT/.bench/venv"
PY="${PYTHON:-python3.11}"

mkdir -p "$ROOT/.bench"
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
CONS="$ROOT/.bench/constraints-peer.txt"
echo "torch==2.13.0" > "$CONS"

"$VENV/bin/pip" install -q -c "$CONS" "llamafactory==0.9.5" "torch==2.13.0" psutil
"$VENV/bin/pip" uninstall -y -q torchvision torchaudio || true

# Empty torchaudio stub: a directory on site-packages is enough for `import torchaudio`.
SITE="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
mkdir -p "$SITE/torchaudio"
cat > "$SITE/torchaudio/__init__.py" <<'PYEOF'
"""Empty stand-in for torchaudio: LLaMA-Factory imports it at module level; text SFT never calls it."""
__version__ = "0.0.0+stub"
PYEOF

DISABLE_VERSION_CHECK=1 "$VENV/bin/python" -c "import llamafactory, transformers, torch, peft, datasets; \
print('llamafactory', llamafactory.__version__, 'transformers', transformers.__version__, \
'torch', torch.__version__, 'peft', peft.__version__, 'datasets', datasets.__version__)"
