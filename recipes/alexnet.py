"""AlexNet (Krizhevsky et al. 2012) recipe: ``python -m recipes.alexnet`` (or ``python recipes/alexnet.py``).

SGD momentum 0.9, lr 0.01 divided by 10 on a plateau, weight decay 5e-4 (as L2 λ = 2.5e-4), dropout 0.5.

    python -m recipes.alexnet                             # alexnet_small on digits, preset full
    python -m recipes.alexnet --data fashion_mnist --epochs 30 --preset dropout --keep-prob 0.5

Options: ``python -m recipes.alexnet --help``; they are shared by every recipe (``recipes.cli``), and the
presets and per-family defaults are in ``recipes.recipe``.
"""

import sys

if __package__ in (None, ""):  # run as a file: python recipes/alexnet.py
    import os

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from recipes.cli import ensure_importable

    ensure_importable(__file__)

from recipes.cli import script_main

FAMILY = "alexnet"
DEFAULT_MODEL = "alexnet_small"


def main(argv=None) -> int:
    return script_main(argv, prog="recipes.alexnet", default_model=DEFAULT_MODEL, family=FAMILY,
                       default_preset="full", default_data="digits", description=__doc__.splitlines()[0])


if __name__ == "__main__":
    sys.exit(main())
