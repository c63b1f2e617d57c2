"""What every benchmark script shares: the machine it ran on, the command, atomic JSON results, the CLI.

Benchmarks are scripts (``python bench/<name>.py``), not part of the installed package; each puts the
repository root on ``sys.path`` and imports this module as ``bench.common``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

# the project's argparse number types (their errors name the rule and the value)
from recipes.cli import _positive_float as positive_float, _positive_int as positive_int  # noqa: F401

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def machine() -> dict[str, Any]:
    """Cores, CPU model, GPUs (none on the CI and development machines) and library versions."""
    import keras
    import tensorflow as tf

    from zoo._quiet import numeric_setup

    setup = numeric_setup()  # reads the processor's model name from /proc/cpuinfo (platform's elsewhere)
    gpus = [device.name for device in tf.config.list_physical_devices("GPU")]
    return {"cpus": os.cpu_count(), "cpu": setup["cpu"], "gpus": gpus, "device": "gpu" if gpus else "cpu",
            "platform": platform.platform(), "python": platform.python_version(),
            "tensorflow": tf.__version__, "keras": keras.__version__, "numeric_setup": setup}


def command(script: str, argv: Sequence[str] | None) -> str:
    """The command line that reproduces this run (``python bench/<script> <args>``)."""
    args = sys.argv[1:] if argv is None else list(argv)
    return " ".join(["python", f"bench/{script}", *(shlex.quote(a) for a in args)])


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """Write ``data`` as indented JSON through a temporary file and a rename: never half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(data, indent=2, default=_json_default) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write a text file atomically (temporary file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def read_json(path: str | os.PathLike, default: Any) -> Any:
    """The JSON in ``path``, or ``default`` when there is no such file."""
    path = Path(path)
    if not path.exists():
        return default
    return json.loads(path.read_text(encoding="utf-8"))


def result_path(name: str, quick: bool, output: str | None) -> Path:
    """``--output`` if given, else ``bench/results/<name>`` (``bench/results/quick/<name>`` for ``--quick``,
    so that a smoke run never overwrites measured figures)."""
    if output:
        return Path(output)
    return RESULTS / "quick" / name if quick else RESULTS / name


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    values = [float(v) for v in values]
    if not values:
        return math.nan, math.nan
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def markdown_table(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub markdown table."""
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


class Stopwatch:
    """Wall-clock seconds since creation."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def __call__(self) -> float:
        return time.perf_counter() - self.start


def save_figure(fig, path: str | os.PathLike, dpi: int = 110) -> Path:
    """Save a matplotlib figure atomically (temporary file + rename) and close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        fig.savefig(tmp, dpi=dpi)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    return path


def names_in(allowed: Sequence[str], what: str) -> Callable[[str], list[str]]:
    """An argparse type for a comma-separated list whose items must be in ``allowed``."""
    def parse(text: str) -> list[str]:
        names = [name.strip() for name in text.split(",") if name.strip()]
        bad = [name for name in names if name not in allowed]
        if not names or bad:
            raise argparse.ArgumentTypeError(
                f"must be a comma-separated list of {what} from {', '.join(allowed)}; got {text!r}")
        return list(dict.fromkeys(names))
    return parse


def publish_summary(data: dict, output: Path, summarize: Callable, markdown: Callable, plot: Callable,
                    seconds: float) -> None:
    """The end of a resumable run-by-run benchmark: ``data["summary"] = summarize(data["runs"])`` into the
    JSON, its markdown table beside it (``.md``) and its plot (``.png``); ValueError when there is nothing."""
    data["summary"] = summarize(data["runs"])
    if not data["summary"]:
        raise ValueError("no runs to summarize")
    write_json(output, data)
    table = markdown(data["summary"])
    write_text(output.with_suffix(".md"), table)
    plot(data["summary"], output.with_suffix(".png"))
    print(table)
    print(f"wrote {output}, {output.with_suffix('.md')}, {output.with_suffix('.png')} ({seconds:.0f} s)")


def seed_list(text: str) -> list[int]:
    """An argparse type for comma-separated seeds (integers >= 0, duplicates dropped)."""
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        seeds = []
    if not seeds or any(s < 0 for s in seeds):
        raise argparse.ArgumentTypeError(f"must be comma-separated integers >= 0 such as 0,1,2; got {text!r}")
    return list(dict.fromkeys(seeds))


def main(run: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None, prog: str) -> int:
    """Run a benchmark: bad input is one line on stderr and status 2 (``zoo.cli.cli_main``)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from zoo.cli import cli_main

    return cli_main(run, argv, prog)
