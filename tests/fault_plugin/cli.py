"""``python -m tests.fault_plugin.cli ...``: the afcot CLI with the fault plugin installed (for subprocess tests)."""

import sys

from afcot_core import cli
from afcot_core import plugins as loader

from . import FaultPlugin

if __name__ == "__main__":
    loader.default = lambda: loader.load(extra={"faults": FaultPlugin()})
    sys.exit(cli.main())
