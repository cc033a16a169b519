"""``python -m dpo_diff``: the command line (see :mod:`dpo_diff.cli`)."""

import sys

try:
    from .cli import main
except KeyboardInterrupt:  # Ctrl-C before the command line could install its own handling
    sys.stderr.write("error: interrupted before the command could finish; run it again\n")
    sys.exit(130)

main()
