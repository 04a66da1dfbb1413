"""`python -m bot.worker`: a worker machine of a cluster (bot.cluster.machine)."""

import sys

from bot.cluster.machine import main

if __name__ == "__main__":
    sys.exit(main())
