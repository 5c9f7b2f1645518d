"""`python -m tiangong`: the same command as `tiangong` (the native host launcher uses it)."""

import sys

from tiangong.cli import main

sys.exit(main())
