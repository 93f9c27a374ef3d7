"""`python -m model.synth`, kept so existing commands keep working; the code is `model.synthetic.synth`.

The one command line is `covid-risk` (docs/cli.md).
"""

from model.synthetic.synth import main

if __name__ == "__main__":
    raise SystemExit(main())
