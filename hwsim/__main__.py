"""``python -m hwsim`` runs the command line."""

import sys

from hwsim.cli import main

sys.exit(main())
