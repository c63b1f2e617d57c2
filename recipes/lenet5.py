"""LeNet-5 (LeCun et al. 1998) recipe: ``python -m recipes.lenet5`` (or ``python recipes/lenet5.py``).

The README's main job: ``python -m recipes.lenet5`` trains LeNet-5 on the embedded 8×8 digits with the
``full`` preset (L2, dropout, batch norm, the digits augmentation, early stopping) in about a minute on
a 2-core CPU and prints the test accuracy and the bias/variance verdict.

    python -m recipes.lenet5                              # digits, preset full
    python recipes/lenet5.py --preset baseline            # the same as a file
    python -m recipes.lenet5 --data fashion_mnist --data-dir ~/data/fashion-mnist --epochs 20
    python -m recipes.lenet5 --quick                      # a seconds-long smoke run

Options: ``python -m recipes.lenet5 --help``; they are shared by every recipe (``recipes.cli``), and the
presets and per-family defaults are in ``recipes.recipe``.
"""

import sys

if __package__ in (None, ""):  # run as a file: python recipes/lenet5.py
    import os

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from recipes.cli import ensure_importable

    ensure_importable(__file__)

from recipes.cli import script_main

FAMILY = "lenet"
DEFAULT_MODEL = "lenet5"


def main(argv=None) -> int:
    return script_main(argv, prog="recipes.lenet5", default_model=DEFAULT_MODEL, family=FAMILY,
                       default_preset="full", default_data="digits", description=__doc__.splitlines()[0])


if __name__ == "__main__":
    sys.exit(main())
