"""`python -m model.capacity`, kept so existing commands keep working; the code is `model.planning.capacity`.

The one command line is `covid-risk` (docs/cli.md).
"""

from model.planning.capacity import main

if __name__ == "__main__":
    raise SystemExit(main())
