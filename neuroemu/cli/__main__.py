"""``python -m neuroemu.cli``: the ``neuroemu`` command."""

import sys

from . import main

sys.exit(main())
