"""ResNet (He et al. 2015) recipe: ``python -m recipes.resnet`` (or ``python recipes/resnet.py``).

SGD 0.1 momentum 0.9 with cosine decay, batch 128, weight decay 1e-4 (as L2 λ = 5e-5), batch norm.

    python -m recipes.resnet                              # resnet20 on digits, preset full
    python -m recipes.resnet --variant resnet56 --data fashion_mnist --epochs 30
    python -m recipes.resnet --schedule step              # the paper's ×0.1 at 50 % and 75 %

Options: ``python -m recipes.resnet --help``; they are shared by every recipe (``recipes.cli``), and the
presets and per-family defaults are in ``recipes.recipe``.
"""

import sys

if __package__ in (None, ""):  # run as a file: python recipes/resnet.py
    import os

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from recipes.cli import ensure_importable

    ensure_importable(__file__)

from recipes.cli import script_main

FAMILY = "resnet"
DEFAULT_MODEL = "resnet20"


def main(argv=None) -> int:
    return script_main(argv, prog="recipes.resnet", default_model=DEFAULT_MODEL, family=FAMILY,
                       default_preset="full", default_data="digits", description=__doc__.splitlines()[0])


if __name__ == "__main__":
    sys.exit(main())
