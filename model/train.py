"""`python -m model.train`, kept so existing commands keep working; the code is `model.training.train`.

The one command line is `covid-risk` (docs/cli.md).
"""

from model.training.train import main

if __name__ == "__main__":
    raise SystemExit(main())
