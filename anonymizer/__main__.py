"""``python -m anonymizer`` runs the ``photo-anon`` command line (handy without the console script)."""

import sys

from anonymizer.cli import main

sys.exit(main())
