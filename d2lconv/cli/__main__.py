"""``python -m d2lconv.cli``: the ``d2lconv`` command."""

import sys

from . import main

sys.exit(main())
