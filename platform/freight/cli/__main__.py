"""`python -m freight.cli`."""

import sys

from freight.cli import main

sys.exit(main())
