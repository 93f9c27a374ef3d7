"""`python -m model.recalibrate`, kept so existing commands keep working; the code is `model.training.recalibrate`.

The one command line is `covid-risk` (docs/cli.md).
"""

from model.training.recalibrate import main

if __name__ == "__main__":
    raise SystemExit(main())
