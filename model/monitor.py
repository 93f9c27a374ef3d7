"""`python -m model.monitor`, kept so existing commands keep working; the code is `model.monitoring.monitor`.

The one command line is `covid-risk` (docs/cli.md).
"""

from model.monitoring.monitor import main

if __name__ == "__main__":
    raise SystemExit(main())
