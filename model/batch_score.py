"""`python -m model.batch_score`, kept so existing commands keep working; the code is `model.serving.batch_score`.

The one command line is `covid-risk` (docs/cli.md).
"""

from model.serving.batch_score import main

if __name__ == "__main__":
    raise SystemExit(main())
