"""`python -m mlpipe` is the same as the `mlpipe` console script."""

import sys

from mlpipe.cli import main

sys.exit(main())
