"""LSTM (Hochreiter & Schmidhuber 1997) recipe: ``python -m recipes.lstm`` (or ``python recipes/lstm.py``).

Adam with gradient clipping at norm 1.0. ``lstm`` reads an image row by row (rows are timesteps);
``--variant lstm_text --data imdb`` classifies token sequences.

    python -m recipes.lstm                                # lstm on digits rows, preset full
    python -m recipes.lstm --data fashion_mnist --epochs 10
    python -m recipes.lstm --variant lstm_text --data imdb

Options: ``python -m recipes.lstm --help``; they are shared by every recipe (``recipes.cli``), and the
presets and per-family defaults are in ``recipes.recipe``.
"""

import sys

if __package__ in (None, ""):  # run as a file: python recipes/lstm.py
    import os

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from recipes.cli import ensure_importable

    ensure_importable(__file__)

from recipes.cli import script_main

FAMILY = "lstm"
DEFAULT_MODEL = "lstm"


def main(argv=None) -> int:
    return script_main(argv, prog="recipes.lstm", default_model=DEFAULT_MODEL, family=FAMILY,
                       default_preset="full", default_data="digits", description=__doc__.splitlines()[0])


if __name__ == "__main__":
    sys.exit(main())
