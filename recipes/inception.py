"""GoogLeNet / Inception v1 (Szegedy et al. 2014) recipe: ``python -m recipes.inception`` (or ``python recipes/inception.py``).

SGD momentum 0.9, lr 0.01 with cosine decay, weight decay 2e-4 (as L2 λ = 1e-4), dropout 0.4.

    python -m recipes.inception                           # googlenet_small on digits, preset full
    python -m recipes.inception --data fashion_mnist --epochs 30

Options: ``python -m recipes.inception --help``; they are shared by every recipe (``recipes.cli``), and the
presets and per-family defaults are in ``recipes.recipe``.
"""

import sys

if __package__ in (None, ""):  # run as a file: python recipes/inception.py
    import os

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from recipes.cli import ensure_importable

    ensure_importable(__file__)

from recipes.cli import script_main

FAMILY = "inception"
DEFAULT_MODEL = "googlenet_small"


def main(argv=None) -> int:
    return script_main(argv, prog="recipes.inception", default_model=DEFAULT_MODEL, family=FAMILY,
                       default_preset="full", default_data="digits", description=__doc__.splitlines()[0])


if __name__ == "__main__":
    sys.exit(main())
