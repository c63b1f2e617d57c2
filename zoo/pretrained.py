"""The trained weights the zoo ships: one record per weight file, readable without TensorFlow.

    python -m zoo weights                     # every record as a table
    python -m zoo weights resnet20.fashion_mnist   # one record

Each file ``zoo/pretrained/<model>.<weights>.weights.h5`` is the inference model of one training run
(``keras.Input`` -> ``Normalization`` adapted on the run's training split -> the zoo model), so it takes the
raw pixels a user has (28×28, 0..255 for Fashion-MNIST) and returns class probabilities. Its record in
``zoo/pretrained/records.json`` holds what torchvision's ``Weights.meta`` and timm's ``pretrained_cfg`` hold
and more: the builder and its arguments, input shape, classes and their names, the preprocessing, the full
Recipe and its hash, the command that made it, the data split, the metrics, parameters, MACs, file size and
sha256, the machine and its numeric set-up, the library versions and the date.

Names. A record's ``weights`` is a version (``fashion_mnist_v1``); its ``tag`` (``fashion_mnist``) selects the
highest version of that tag. A version is never retrained in place: a better recipe ships ``_v2`` and the
tag follows it, while ``fashion_mnist_v1`` stays loadable, so a result stays reproducible.

Integrity. :func:`verified_file` checks the file's size and sha256 before anything loads it: a missing,
truncated or altered file is a :class:`WeightsError` naming the file, never a model with random weights.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

__all__ = ["WeightsError", "RECORDS_FILE", "WEIGHTS_DIR", "records", "find_record", "weight_names",
           "weights_path", "verified_file", "sha256_of", "is_weight_name", "record_key"]

WEIGHTS_DIR = Path(__file__).resolve().parent / "pretrained"
RECORDS_FILE = WEIGHTS_DIR / "records.json"
_VERSIONED = re.compile(r"^(?P<tag>[a-z][a-z0-9_]*?)_v(?P<version>[1-9][0-9]*)$")
# the fields every record has (tests/test_weights_records.py checks them against the files)
RECORD_FIELDS = ("model", "family", "weights", "tag", "version", "file", "builder_kwargs", "input_shape", "input",
                 "classes", "class_names", "preprocessing", "recipe", "recipe_sha256", "command", "data",
                 "metrics", "params", "macs", "file_bytes", "sha256", "machine", "numeric_setup", "versions",
                 "date", "note")


class WeightsError(ValueError):
    """A shipped weight that cannot be used: unknown name, or a missing, truncated or altered file."""


def record_key(record: dict[str, Any]) -> str:
    """``model.weights``, e.g. ``resnet20.fashion_mnist_v1``: how ``zoo weights`` names a record."""
    return f"{record['model']}.{record['weights']}"


@functools.lru_cache(maxsize=None)
def _load(path: str, mtime: float) -> tuple[dict[str, Any], ...]:
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    return tuple(data["records"])


def records(model: str | None = None) -> list[dict[str, Any]]:
    """Every shipped record (of ``model`` only, when given), in the registry's order."""
    if not RECORDS_FILE.is_file():
        return []
    found = _load(str(RECORDS_FILE), RECORDS_FILE.stat().st_mtime)
    return [dict(r) for r in found if model is None or r["model"] == model]


def weight_names(model: str) -> list[str]:
    """The names ``weights=`` accepts for ``model``: each tag (the current version) and every version."""
    found = records(model)
    return sorted({r["tag"] for r in found}) + [r["weights"] for r in found]


def is_weight_name(text: str) -> bool:
    """Whether ``text`` has the shape of a shipped weight name (a tag or a version), not of a path."""
    return bool(re.fullmatch(r"[a-z][a-z0-9_]*", text))


def find_record(model: str, weights: str) -> dict[str, Any]:
    """The record of ``model`` named ``weights``: an exact version, or a tag's highest version.

    Raises:
        WeightsError: no such weight for ``model`` (the message lists the names that exist).
    """
    found = records(model)
    exact = [r for r in found if r["weights"] == weights]
    if exact:
        return exact[0]
    tagged = [r for r in found if r["tag"] == weights]
    if tagged:
        return max(tagged, key=lambda r: int(r["version"]))
    names = weight_names(model)
    known = (f"its shipped weights are {', '.join(repr(n) for n in names)}" if names
             else "no trained weights are shipped for it (`python -m zoo weights` lists them)")
    raise WeightsError(f"{model}: no weights named {weights!r}; {known}, or pass None or a .weights.h5 file")


def weights_path(record: dict[str, Any]) -> Path:
    return WEIGHTS_DIR / record["file"]


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verified_file(record: dict[str, Any]) -> Path:
    """The record's weight file, after checking that it exists and has the recorded size and sha256.

    Raises:
        WeightsError: the file is missing, truncated (or longer) or altered; the message names it.
    """
    path = weights_path(record)
    key = record_key(record)
    if not path.is_file():
        raise WeightsError(f"{key}: weights file {str(path)!r} is missing (reinstall the package)")
    size = path.stat().st_size
    if size != record["file_bytes"]:
        raise WeightsError(f"{key}: weights file {str(path)!r} has {size} bytes, its record says "
                           f"{record['file_bytes']}: truncated or replaced (reinstall the package)")
    digest = sha256_of(path)
    if digest != record["sha256"]:
        raise WeightsError(f"{key}: weights file {str(path)!r} is altered: sha256 {digest[:16]}…, its record "
                           f"says {record['sha256'][:16]}… (reinstall the package)")
    return path


def version_name(tag: str, version: int) -> str:
    """``fashion_mnist`` and 2 -> ``fashion_mnist_v2`` (checked both ways)."""
    name = f"{tag}_v{int(version)}" if isinstance(tag, str) else ""
    match = _VERSIONED.match(name)
    if not match or match["tag"] != tag or _VERSIONED.match(tag):
        raise ValueError(f"weight tag must be lower-case letters, digits and '_' (not ending in _vN), got {tag!r}")
    return name
