"""``python -m lmforge``: what torchrun and ``accelerate launch -m lmforge`` start on every rank."""

import sys

from lmforge.cli import main
from lmforge.launch.worker import setup_worker_logs

if __name__ == "__main__":
    setup_worker_logs()
    sys.exit(main())
