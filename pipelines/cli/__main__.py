"""``python -m pipelines.cli``: the ``cascade`` command."""

import sys

from pipelines.cli.main import main

sys.exit(main())
