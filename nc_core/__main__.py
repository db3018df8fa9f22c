"""``python -m nc_core``: see :mod:`nc_core.cli`."""

import sys

from nc_core.cli import main

sys.exit(main())
