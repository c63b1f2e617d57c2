"""``python -m recipes --model NAME [options]``: the recipe command line for any registered zoo model.

    python -m recipes --model resnet56 --data fashion_mnist --preset full --epochs 30
    python -m recipes --model lenet5 --preset l2 --l2 1e-3 --quick

The per-family scripts (``python -m recipes.lenet5``, ``.alexnet``, ``.inception``, ``.resnet``,
``.lstm``) are the same command with a default model; ``python -m recipes.compare`` runs several presets.
"""

import sys

from recipes.cli import script_main


def main(argv=None) -> int:
    return script_main(argv, prog="recipes", default_model=None, family=None, default_preset="full",
                       default_data="digits", description=__doc__.splitlines()[0])


if __name__ == "__main__":
    sys.exit(main())
