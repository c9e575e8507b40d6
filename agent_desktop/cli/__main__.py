"""`python -m agent_desktop.cli`: the same as the `hotline` command."""

import sys

from agent_desktop.cli import main

sys.exit(main())
