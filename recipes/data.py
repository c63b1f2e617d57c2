"""Data sets for the recipes: load, check, split into train / validation / test, and tf.data pipelines.

    from recipes.data import load_data, train_dataset, make_dataset
    splits = load_data("digits", seed=0)                     # embedded, no download
    splits = load_data("fashion_mnist", limit=2000)          # IDX files from disk (see below)
    splits = load_data("my_photos/")                          # a folder of class sub-folders
    splits = load_data("arrays.npz")                          # x_train, y_train[, x_test, y_test]
    ds = train_dataset(splits, batch_size=128, augmentation="digits", seed=0)

The rules of the course notes, as this module keeps them:

- **The test split is touched once.** Data sets without an official test split (``digits``, a folder, an
  ``.npz`` without test arrays) get one carved off first: stratified, ``TEST_FRACTION`` of the data, with
  the fixed ``TEST_SPLIT_SEED`` — so every run, whatever its ``seed``, is judged on the same test images,
  and no seed search can peek at them.
- **Validation is carved from train only**, stratified, with ``seed``; it never draws from the test split.
- **Images stay at their raw pixel scale** (0..255, or 0..16 for digits) as float32: the model normalizes
  with a Normalization layer whose mean and variance come from ``x_train`` alone
  (``recipes.modeling.build_model``), so the same numbers travel with the saved model.
- **Bad data fails loudly**: a missing file, a wrong IDX magic number, images and labels of different
  lengths, labels outside ``[0, classes)``, NaN or inf, an empty split, a ``validation_fraction`` outside
  (0, 1) or an unknown name raise :class:`DataError` (a ``ValueError``) naming the file or split and the
  problem.

Where MNIST and Fashion-MNIST come from, in this order (the first place that has the four IDX files
``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
``t10k-labels-idx1-ubyte`` — gzipped or not — wins; a folder is also searched for a ``<name>/``,
``fashion-mnist/`` sub-folder and for a ``<name>.npz``):

1. ``data_dir=`` (only there: a missing file is an error), else the ``ZOO_DATA_DIR`` environment variable;
2. ``/usr/share/datasets/fashion-mnist`` (Debian package ``dataset-fashion-mnist``; Fashion-MNIST only);
3. the Keras cache ``$KERAS_HOME/datasets`` (default ``~/.keras/datasets``: ``fashion-mnist/``, ``mnist.npz``);
4. ``keras.datasets.<name>.load_data()``, which downloads (needs a network).

``cifar10`` and ``imdb`` come through ``keras.datasets`` (its cache, else a download); ``cifar10`` also
from ``<data_dir or ZOO_DATA_DIR>/cifar10.npz``.
"""

from __future__ import annotations

import dataclasses
import difflib
import gzip
import os
import zipfile
import zlib
from typing import Any, Callable

import numpy as np

__all__ = [
    "DataError", "DATASETS", "DOMAINS", "DataSplits", "load_data", "make_dataset", "train_dataset",
    "eval_dataset", "stratified_split", "read_idx", "TEST_FRACTION", "TEST_SPLIT_SEED",
    "FASHION_MNIST_CLASSES", "CIFAR10_CLASSES",
]


class DataError(ValueError):
    """Bad or missing data; the message names the file or split and the problem."""


DATASETS: tuple[str, ...] = ("digits", "mnist", "fashion_mnist", "cifar10", "imdb")
DOMAINS: tuple[str, ...] = ("digits", "clothes", "natural", "text", "sequences")
DATASET_DOMAINS: dict[str, str] = {"digits": "digits", "mnist": "digits", "fashion_mnist": "clothes",
                                   "cifar10": "natural", "imdb": "text"}
# Training examples of each built-in data set before ``limit`` and the validation split (digits: its 1,797
# images less the carved test fifth). ``recipes.recipe.data_sized_lambda`` scales λ by these.
TRAINING_EXAMPLES: dict[str, int] = {"digits": 1438, "mnist": 60000, "fashion_mnist": 60000, "cifar10": 50000,
                                     "imdb": 25000}

# Carving a test split where a data set has none: this fraction, always with this seed (see the module doc).
TEST_FRACTION = 0.2
TEST_SPLIT_SEED = 0

# The official label order (github.com/zalandoresearch/fashion-mnist, README "Labels").
FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
DIGIT_CLASSES = [str(i) for i in range(10)]

# Human / Bayes error estimates for the bias-variance verdict.
BASELINE_ERRORS: dict[str, float | None] = {
    # Zalando's Fashion-MNIST README, "Benchmark": crowd-sourced human accuracy 0.835 (1,000 test images,
    # 3 labels each, majority vote, annotators with no fashion expertise) -> error 0.165.
    "fashion_mnist": 0.165,
    # LeCun et al. 1995, "Comparison of learning algorithms for handwritten digit recognition": human error
    # on MNIST-style digits is about 0.2 %.
    "mnist": 0.002,
    # No published human figure for sklearn's 8×8 optdigits (UCI): we widen MNIST's 0.2 % to 1 % because
    # the 8×8, 17-grey-level rendering loses detail a person would use. An estimate, not a measurement.
    "digits": 0.01,
    # Karpathy 2011, "Lessons learned from manually classifying CIFAR-10": about 94 % human accuracy.
    "cifar10": 0.06,
    "imdb": None,
}

IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension
SYSTEM_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
_ALIASES = {"mnist": ("mnist",), "fashion_mnist": ("fashion_mnist", "fashion-mnist")}


@dataclasses.dataclass
class DataSplits:
    """Train / validation / test arrays and what a recipe needs to know about them.

    ``x_*``: float32 ``(N, *input_shape)`` images at their raw pixel scale (not normalized), or int32
    tokens ``(N, maxlen)`` for text; ``y_*``: int32 class ids in ``[0, classes)``.
    ``baseline_error``: human or Bayes error for the bias/variance verdict, None if unknown.
    ``vocab_size``: for text, the token ids are in ``[0, vocab_size)``; None otherwise.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    input_shape: tuple
    classes: int
    class_names: list[str]
    domain: str
    baseline_error: float | None
    source: str
    vocab_size: int | None = None

    @property
    def is_text(self) -> bool:
        return self.domain == "text"

    @property
    def value_range(self) -> tuple[float, float]:
        """(min, max) of the training inputs: the pixel scale augmentation must keep (e.g. 0..16, 0..255)."""
        return float(np.min(self.x_train)), float(np.max(self.x_train))

    def describe(self) -> str:
        """One line: sizes, shape, classes and source."""
        return (f"{self.name}: train {len(self.y_train)}, val {len(self.y_val)}, test {len(self.y_test)}; "
                f"input {self.input_shape}, {self.classes} classes, domain {self.domain} (from {self.source})")

    def __repr__(self) -> str:
        return f"DataSplits({self.describe()})"


# ------------------------------------------------------------------------------------------------------
# Splitting
# ------------------------------------------------------------------------------------------------------

def stratified_split(y: np.ndarray, take: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split indices of ``y`` into ``(rest, taken)`` with ``len(taken) == take``, stratified by class.

    Each class gives ``take · n_c / N`` examples rounded by largest remainder (exact integer arithmetic;
    ties broken at random with ``seed``), the examples drawn at random with ``seed``. Both index arrays are
    sorted, so the original order is kept.
    """
    y = np.asarray(y)
    total = len(y)
    if not 0 <= take <= total:
        raise ValueError(f"take must be in [0, {total}], got {take}")
    rng = np.random.default_rng(seed)
    labels, counts = np.unique(y, return_counts=True)
    numerators = counts.astype(np.int64) * take
    quota = numerators // total
    remainders = numerators % total
    short = take - int(quota.sum())
    if short:
        order = np.lexsort((rng.random(len(labels)), -remainders))  # largest remainder first
        quota[order[:short]] += 1
    taken = []
    for label, count in zip(labels, quota):
        members = np.flatnonzero(y == label)
        taken.append(rng.permutation(members)[:count])
    taken_idx = np.sort(np.concatenate(taken)) if taken else np.zeros(0, np.int64)
    mask = np.ones(total, bool)
    mask[taken_idx] = False
    return np.flatnonzero(mask), taken_idx


# ------------------------------------------------------------------------------------------------------
# Checking
# ------------------------------------------------------------------------------------------------------

def _check_labels(y: Any, where: str, classes: int | None = None) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(f"{where}: labels must be one integer class id per example, got shape {y.shape} "
                        "(one-hot labels? pass their argmax)")
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)):
            raise DataError(f"{where}: labels contain NaN or inf")
        if np.any(y != np.round(y)):
            raise DataError(f"{where}: labels must be integer class ids, got fractional values")
    elif y.dtype.kind not in "iub":
        raise DataError(f"{where}: labels must be integer class ids, got dtype {y.dtype}")
    y = y.astype(np.int64)
    if len(y) and y.min() < 0:
        raise DataError(f"{where}: label {int(y.min())} is outside [0, classes)")
    if classes is not None and len(y) and y.max() >= classes:
        raise DataError(f"{where}: label {int(y.max())} is outside [0, {classes}) ({classes} classes)")
    return y


def _check_pair(x: np.ndarray, y: np.ndarray, where_x: str, where_y: str) -> None:
    if len(x) != len(y):
        raise DataError(f"{where_x} has {len(x)} examples but {where_y} has {len(y)} labels")
    if len(x) == 0:
        raise DataError(f"{where_x}: the split is empty")
    if x.dtype.kind not in "fiub":
        raise DataError(f"{where_x}: inputs must be numbers, got dtype {x.dtype}")
    if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
        bad = int(np.count_nonzero(~np.isfinite(x)))
        raise DataError(f"{where_x}: {bad} values are NaN or inf")


# ------------------------------------------------------------------------------------------------------
# Loaders: each returns a _Raw (train and optional test arrays plus metadata), checked afterwards
# ------------------------------------------------------------------------------------------------------

@dataclasses.dataclass
class _Raw:
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    domain: str
    source: str
    class_names: list[str] | None = None
    baseline_error: float | None = None
    where: dict = dataclasses.field(default_factory=dict)  # array name -> file it came from
    text: bool = False
    vocab_size: int | None = None  # text: the tokenizer's vocabulary, when known (else from the data)


def _load_digits(**_: Any) -> _Raw:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = bunch.images.astype(np.float32)[..., None]  # (1797, 8, 8, 1), values 0..16
    return _Raw("digits", x, bunch.target, None, None, "digits", "sklearn", DIGIT_CLASSES,
                BASELINE_ERRORS["digits"], {"x_train": "sklearn digits", "y_train": "sklearn digits"})


def read_idx(path: str, magic: int) -> np.ndarray:
    """One IDX file (gzipped when the name ends in ``.gz``) as a uint8 array, header checked.

    ``magic`` is 2051 for images ``(n, rows, cols)`` and 2049 for labels ``(n,)``.
    """
    kind = {IDX_IMAGES_MAGIC: "images", IDX_LABELS_MAGIC: "labels"}[magic]
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(f"{path}: cannot read the file ({error})") from None
    header = 16 if magic == IDX_IMAGES_MAGIC else 8
    if len(data) < header:
        raise DataError(f"{path}: {len(data)} bytes is too short for an IDX {kind} header ({header} bytes)")
    found = int.from_bytes(data[:4], "big")
    if found != magic:
        raise DataError(f"{path}: wrong IDX magic number {found} (expected {magic} for {kind})")
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range((header - 4) // 4)]
    expected = header + int(np.prod(dims, dtype=np.int64))
    if len(data) != expected:
        shape = "×".join(str(d) for d in dims)
        raise DataError(f"{path}: the header promises {shape} {kind} ({expected} bytes) but the file has "
                        f"{len(data)} bytes (truncated or corrupt)")
    return np.frombuffer(data, np.uint8, offset=header).reshape(dims)


def _idx_files_in(folder: str) -> tuple[dict[str, str], list[str]]:
    """(found: array name -> path, missing: file names) for the four IDX files in ``folder``."""
    found, missing = {}, []
    for key, base in IDX_FILES.items():
        for candidate in (base + ".gz", base):
            path = os.path.join(folder, candidate)
            if os.path.isfile(path):
                found[key] = path
                break
        else:
            missing.append(os.path.join(folder, base + "[.gz]"))
    return found, missing


def _keras_home() -> str:
    return os.path.expanduser(os.environ.get("KERAS_HOME") or os.path.join("~", ".keras"))


def _keras_download(name: str, **options: Any) -> tuple:
    """``keras.datasets.<name>.load_data(**options)`` (the Keras cache, else a download). Tests replace this."""
    import keras

    return getattr(keras.datasets, name).load_data(**options)


# What keras.datasets.<name>.load_data() leaves in its cache, under $KERAS_HOME/datasets.
_KERAS_CACHE = {"mnist": "mnist.npz", "fashion_mnist": "fashion-mnist", "cifar10": "cifar-10-batches-py",
                "imdb": "imdb.npz"}


def _from_keras(name: str, searched: list[str], download: bool = True, **options: Any) -> tuple:
    if not download:
        cached = os.path.join(_keras_home(), "datasets", _KERAS_CACHE[name])
        if name in ("cifar10", "imdb") and os.path.exists(cached):
            return _keras_download(name, **options)  # reads the cache, no network
        where = "; ".join(searched + ([cached] if cached not in searched else [])) or "nowhere"
        raise DataError(f"{name}: not found on disk (searched {where}) and download=False; put the files in a "
                        f"folder and pass data_dir= (or set ZOO_DATA_DIR)")
    try:
        return _keras_download(name, **options)
    except Exception as error:  # keras raises bare Exception subclasses for URL and cache failures
        where = "; ".join(searched) if searched else "nowhere on disk"
        raise DataError(
            f"{name}: not found on disk (searched {where}) and keras.datasets.{name}.load_data() failed: "
            f"{' '.join(str(error).split()) or type(error).__name__}. Put the files in a folder and pass "
            f"data_dir= (or set ZOO_DATA_DIR)"
        ) from None


def _candidate_folders(root: str, name: str) -> list[str]:
    return [root] + [os.path.join(root, alias) for alias in _ALIASES.get(name, (name,))]


def _idx_or_npz_at(folder: str, name: str) -> tuple[str, Any] | None:
    """("idx", paths) or ("npz", path) when ``folder`` holds the data set; raises on a partial set."""
    found, missing = _idx_files_in(folder)
    if found:
        if missing:
            raise DataError(f"{name}: {missing[0]} is missing (found {', '.join(sorted(found.values()))})")
        return "idx", found
    npz = os.path.join(folder, f"{name}.npz")
    if os.path.isfile(npz):
        return "npz", npz
    return None


def _load_mnist_like(name: str, data_dir: str | None = None, download: bool = True, **_: Any) -> _Raw:
    domain = DATASET_DOMAINS[name]
    class_names = FASHION_MNIST_CLASSES if name == "fashion_mnist" else DIGIT_CLASSES
    searched: list[str] = []
    hit: tuple[str, Any] | None = None
    if data_dir is not None:
        if not os.path.isdir(data_dir):
            raise DataError(f"{name}: data_dir {data_dir} is not a folder")
        for folder in _candidate_folders(data_dir, name):
            if os.path.isdir(folder) and (hit := _idx_or_npz_at(folder, name)):
                break
        if hit is None:
            raise DataError(
                f"{name}: {os.path.join(data_dir, IDX_FILES['x_train'])}[.gz] not found (nor in "
                f"{data_dir}/{_ALIASES[name][-1]}/, nor {name}.npz): data_dir needs the four IDX files "
                f"{', '.join(IDX_FILES.values())} (gzipped or not)"
            )
    else:
        roots = []
        if os.environ.get("ZOO_DATA_DIR"):
            roots += _candidate_folders(os.environ["ZOO_DATA_DIR"], name)
        if name == "fashion_mnist":
            roots.append(SYSTEM_FASHION_MNIST)
        cache = os.path.join(_keras_home(), "datasets")
        roots += [os.path.join(cache, alias) for alias in _ALIASES[name]] + [cache]
        for folder in roots:
            searched.append(folder)
            if os.path.isdir(folder) and (hit := _idx_or_npz_at(folder, name)):
                break
    if hit is None:
        (x_train, y_train), (x_test, y_test) = _from_keras(name, searched, download)
        source = f"keras.datasets.{name}"
        where = {key: source for key in IDX_FILES}
    elif hit[0] == "idx":
        paths = hit[1]
        x_train = read_idx(paths["x_train"], IDX_IMAGES_MAGIC)
        y_train = read_idx(paths["y_train"], IDX_LABELS_MAGIC)
        x_test = read_idx(paths["x_test"], IDX_IMAGES_MAGIC)
        y_test = read_idx(paths["y_test"], IDX_LABELS_MAGIC)
        source, where = os.path.dirname(paths["x_train"]), dict(paths)
    else:
        raw = _load_npz(hit[1])
        raw.name, raw.domain, raw.class_names = name, domain, class_names
        raw.baseline_error = BASELINE_ERRORS[name]
        return raw
    return _Raw(name, x_train[..., None], y_train, x_test[..., None], y_test, domain, source,
                class_names, BASELINE_ERRORS[name], where)


def _load_cifar10(data_dir: str | None = None, download: bool = True, **_: Any) -> _Raw:
    root = data_dir or os.environ.get("ZOO_DATA_DIR")
    npz = os.path.join(root, "cifar10.npz") if root else None
    if npz and os.path.isfile(npz):
        raw = _load_npz(npz)
    elif data_dir is not None:
        raise DataError(f"cifar10: {npz} not found (data_dir for cifar10 needs a cifar10.npz with x_train, "
                        "y_train, x_test, y_test)")
    else:
        (x_train, y_train), (x_test, y_test) = _from_keras("cifar10", [npz] if npz else [], download)
        raw = _Raw("cifar10", x_train, y_train, x_test, y_test, "natural", "keras.datasets.cifar10",
                   where={k: "keras.datasets.cifar10" for k in IDX_FILES})
    raw.name, raw.domain, raw.class_names = "cifar10", DATASET_DOMAINS["cifar10"], CIFAR10_CLASSES
    raw.baseline_error = BASELINE_ERRORS["cifar10"]
    return raw


def _load_imdb(num_words: int = 20000, maxlen: int = 200, download: bool = True, **_: Any) -> _Raw:
    import keras

    (x_train, y_train), (x_test, y_test) = _from_keras("imdb", [], download, num_words=num_words)
    pad = dict(maxlen=maxlen, padding="pre", truncating="pre", value=0, dtype="int32")
    x_train = keras.utils.pad_sequences(list(x_train), **pad)
    x_test = keras.utils.pad_sequences(list(x_test), **pad)
    return _Raw("imdb", x_train, y_train, x_test, y_test, "text", "keras.datasets.imdb",
                ["negative", "positive"], None, {k: "keras.datasets.imdb" for k in IDX_FILES}, text=True,
                vocab_size=num_words)


def _load_npz(path: str, **_: Any) -> _Raw:
    """``x_train``, ``y_train``, optional ``x_test`` + ``y_test``, ``class_names`` (strings), ``domain``."""
    if os.path.isfile(path) and not zipfile.is_zipfile(path):  # np.load would try it as a pickle
        raise DataError(f"{path}: not a readable .npz archive (np.savez writes one, with x_train, y_train[, "
                        f"x_test, y_test])")
    try:
        archive = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:  # BadZipFile: a corrupt .npz
        raise DataError(f"{path}: not a readable .npz file ({error})") from None
    with archive:
        keys = set(archive.files)
        missing = [k for k in ("x_train", "y_train") if k not in keys]
        if missing:
            raise DataError(f"{path}: missing {', '.join(missing)} (the file has: {', '.join(sorted(keys)) or 'nothing'})")
        if ("x_test" in keys) != ("y_test" in keys):
            have, lack = ("x_test", "y_test") if "x_test" in keys else ("y_test", "x_test")
            raise DataError(f"{path}: has {have} but no {lack} (give both or neither)")
        arrays = {}
        for key in ("x_train", "y_train", "x_test", "y_test", "class_names", "domain"):
            if key in keys:
                try:
                    arrays[key] = archive[key]
                except ValueError as error:  # object arrays need pickle, which we refuse
                    if "pickle" not in str(error):
                        raise DataError(f"{path}: {key} is corrupt ({error})") from None
                    raise DataError(f"{path}: {key} cannot be read without pickle ({error}); save plain "
                                    "numeric arrays (np.savez with allow_pickle-free dtypes)") from None
                except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as error:  # a damaged member
                    raise DataError(f"{path}: {key} is corrupt ({error}); write the file again") from None
    class_names = None
    if "class_names" in arrays:
        names = arrays["class_names"]
        if names.dtype.kind not in "US" or names.ndim != 1:
            raise DataError(f"{path}: class_names must be a 1-D array of strings, got {names.dtype} {names.shape}")
        class_names = [str(n) for n in names.tolist()]
    domain = None
    if "domain" in arrays:
        domain = str(arrays["domain"].item() if arrays["domain"].ndim == 0 else arrays["domain"][0])
    x_train = arrays["x_train"]
    text = domain == "text" or (domain is None and x_train.ndim == 2 and x_train.dtype.kind in "iu")
    if domain is None:
        domain = "text" if text else "natural"
    name = os.path.splitext(os.path.basename(path))[0]
    where = {k: f"{path}[{k}]" for k in ("x_train", "y_train", "x_test", "y_test")}
    return _Raw(name, x_train, arrays["y_train"], arrays.get("x_test"), arrays.get("y_test"), domain,
                path, class_names, None, where, text)


def _decode_image(path: str, channels: int):
    import tensorflow as tf

    try:
        image = tf.io.decode_image(tf.io.read_file(path), channels=channels, expand_animations=False)
    except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError) as error:
        raise DataError(f"{path}: not a readable image ({error.message.splitlines()[0]})") from None
    return image


def _folder_classes(folder: str) -> tuple[list[str], list[list[str]]]:
    class_names = sorted(entry.name for entry in os.scandir(folder)
                         if entry.is_dir() and not entry.name.startswith("."))
    if len(class_names) < 2:
        hint = ""
        if _idx_files_in(folder)[0]:
            hint = " (it holds IDX files: use load_data('fashion_mnist' or 'mnist', data_dir=...))"
        raise DataError(f"{folder}: needs one sub-folder per class, at least 2, found "
                        f"{class_names or 'none'}{hint}")
    files = []
    for class_name in class_names:
        class_dir = os.path.join(folder, class_name)
        images = sorted(os.path.join(class_dir, f) for f in os.listdir(class_dir)
                        if f.lower().endswith(IMAGE_EXTENSIONS) and not f.startswith("."))
        if not images:
            raise DataError(f"{class_dir}: class folder has no images ({', '.join(IMAGE_EXTENSIONS)})")
        files.append(images)
    return class_names, files


def _read_folder(folder: str, class_names: list[str], files: list[list[str]],
                 image_size: tuple[int, int] | None) -> tuple[np.ndarray, np.ndarray]:
    import tensorflow as tf

    flat = [(path, label) for label, paths in enumerate(files) for path in paths]
    probe = [_decode_image(path, 0) for path, _ in flat]
    channels = 1 if all(int(image.shape[-1]) == 1 for image in probe) else 3
    sizes = {tuple(int(s) for s in image.shape[:2]) for image in probe}
    if image_size is None and len(sizes) > 1:
        raise DataError(f"{folder}: images have different sizes {sorted(sizes)[:5]}; pass image_size=(h, w)")
    target = tuple(image_size) if image_size is not None else sizes.pop()
    images = []
    for (path, _), image in zip(flat, probe):
        if int(image.shape[-1]) != channels:
            image = _decode_image(path, channels)
        if tuple(image.shape[:2]) != target:
            image = tf.image.resize(image, target, method="bilinear")
        images.append(np.asarray(image, dtype=np.float32))
    return np.stack(images), np.array([label for _, label in flat], np.int64)


def _load_folder(path: str, image_size: tuple[int, int] | None = None, **_: Any) -> _Raw:
    """One sub-folder per class; or ``train/`` (and optional ``test/``) each holding class sub-folders."""
    folder = path
    subdirs = {entry.name for entry in os.scandir(folder) if entry.is_dir() and not entry.name.startswith(".")}
    name = os.path.basename(os.path.normpath(folder))
    if "train" in subdirs and subdirs <= {"train", "test"}:
        class_names, train_files = _folder_classes(os.path.join(folder, "train"))
        x_train, y_train = _read_folder(os.path.join(folder, "train"), class_names, train_files, image_size)
        x_test = y_test = None
        if "test" in subdirs:
            test_names, test_files = _folder_classes(os.path.join(folder, "test"))
            if test_names != class_names:
                raise DataError(f"{os.path.join(folder, 'test')}: class folders {test_names} differ from "
                                f"train's {class_names}")
            size = image_size or tuple(x_train.shape[1:3])
            x_test, y_test = _read_folder(os.path.join(folder, "test"), class_names, test_files, size)
            if x_test.shape[-1] != x_train.shape[-1]:
                x_test = np.repeat(x_test, 3, axis=-1) if x_test.shape[-1] == 1 else x_test
                x_train = np.repeat(x_train, 3, axis=-1) if x_train.shape[-1] == 1 else x_train
    else:
        class_names, files = _folder_classes(folder)
        x_train, y_train = _read_folder(folder, class_names, files, image_size)
        x_test = y_test = None
    where = {"x_train": folder, "y_train": folder, "x_test": folder, "y_test": folder}
    return _Raw(name, x_train, y_train, x_test, y_test, "natural", folder, class_names, None, where)


_LOADERS: dict[str, Callable[..., _Raw]] = {
    "digits": _load_digits,
    "mnist": lambda **kw: _load_mnist_like("mnist", **kw),
    "fashion_mnist": lambda **kw: _load_mnist_like("fashion_mnist", **kw),
    "cifar10": _load_cifar10,
    "imdb": _load_imdb,
}


# ------------------------------------------------------------------------------------------------------
# load_data
# ------------------------------------------------------------------------------------------------------

def _check_options(validation_fraction: Any, seed: Any, limit: Any, test_limit: Any, domain: Any) -> None:
    if isinstance(validation_fraction, bool) or not isinstance(validation_fraction, (int, float)) \
            or not 0.0 < float(validation_fraction) < 1.0:
        raise DataError(f"validation_fraction must be a number in (0, 1), got {validation_fraction!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise DataError(f"seed must be an integer, got {seed!r}")
    for argument, value, low in (("limit", limit, 2), ("test_limit", test_limit, 1)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer))
                                  or value < low):
            raise DataError(f"{argument} must be None or an integer >= {low}, got {value!r}")
    if domain is not None and domain not in DOMAINS:
        raise DataError(f"domain must be one of {', '.join(DOMAINS)}, got {domain!r}")


def _resolve(name: Any) -> tuple[str, Callable[..., _Raw]]:
    if not isinstance(name, (str, os.PathLike)):
        raise DataError(f"data must be a name ({', '.join(DATASETS)}) or a path, got {name!r}")
    name = os.fspath(name)
    if name in _LOADERS:
        return name, _LOADERS[name]
    path = os.path.expanduser(name)
    if os.path.isdir(path):
        return path, _load_folder
    if os.path.isfile(path):
        if path.lower().endswith(".npz"):
            return path, _load_npz
        raise DataError(f"{path}: a data file must be a .npz (x_train, y_train[, x_test, y_test])")
    if path.lower().endswith(".npz") or os.sep in path:
        raise DataError(f"{path}: file not found")
    close = difflib.get_close_matches(name.replace("-", "_").lower(), DATASETS, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise DataError(f"unknown data {name!r}{hint}: use one of {', '.join(DATASETS)}, a folder of class "
                    "sub-folders or a .npz file")


def load_data(name: str, *, data_dir: str | None = None, validation_fraction: float = 0.1, seed: int = 0,
              limit: int | None = None, test_limit: int | None = None, domain: str | None = None,
              image_size: tuple[int, int] | None = None, num_words: int = 20000,
              maxlen: int = 200, download: bool = True) -> DataSplits:
    """Load a data set and split it into train / validation / test (see the module doc for the rules).

    Args:
        name: one of ``DATASETS``, a folder of class sub-folders, or a ``.npz`` file.
        data_dir: where to find the files (MNIST, Fashion-MNIST, CIFAR-10); default ``ZOO_DATA_DIR``, then
            the system and Keras caches, then a download.
        validation_fraction: share of the training examples (after ``limit``) held out for validation,
            stratified, seeded with ``seed``; in (0, 1).
        limit: keep at most this many training examples (stratified, seeded with ``seed``) before carving
            validation from them — for quick runs and ablations.
        test_limit: keep at most this many test examples (stratified, fixed seed).
        domain: override the domain (``DOMAINS``) of a folder or ``.npz`` (default ``"natural"``).
        image_size: ``(height, width)`` to resize a folder's images to (default: their common size).
        num_words, maxlen: IMDB's vocabulary size and the padded/truncated review length.
        download: allow ``keras.datasets`` to download a data set missing from disk (False: DataError).
    """
    _check_options(validation_fraction, seed, limit, test_limit, domain)
    key, loader = _resolve(name)
    raw = loader(path=key, data_dir=data_dir, image_size=image_size, num_words=num_words, maxlen=maxlen,
                 download=download)
    if domain is not None:
        if (domain == "text") != raw.text and key in _LOADERS:
            raise DataError(f"{key}: domain={domain!r} does not fit this data set ({raw.domain})")
        raw.domain = domain
        raw.text = domain == "text"
    return _split(raw, validation_fraction, seed, limit, test_limit)


def _inputs(raw: _Raw, x: np.ndarray, key: str) -> np.ndarray:
    """Shape and check one input array: images -> (N, h, w, c); text -> (N, T) tokens; sequences (N, T, F)."""
    where = raw.where.get(key, key)
    x = np.asarray(x)
    if raw.text:
        if x.ndim != 2 or x.dtype.kind not in "iu":
            raise DataError(f"{where}: text must be integer tokens of shape (N, maxlen), got {x.dtype} {x.shape}")
        if len(x) and x.min() < 0:
            raise DataError(f"{where}: token ids must be >= 0, found {int(x.min())}")
        return x
    if raw.domain == "sequences":
        if x.ndim != 3:
            raise DataError(f"{where}: sequences must have shape (N, timesteps, features), got {x.shape}")
        return x
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise DataError(f"{where}: images must have shape (N, height, width[, channels]), got {x.shape}"
                        + (" (integer 2-D arrays are read as text tokens)" if x.ndim == 2 else ""))
    return x


def _split(raw: _Raw, validation_fraction: float, seed: int, limit: int | None,
           test_limit: int | None) -> DataSplits:
    name = raw.name
    where = raw.where
    x_train = _inputs(raw, raw.x_train, "x_train")
    _check_pair(x_train, np.asarray(raw.y_train),
                where.get("x_train", "x_train"), where.get("y_train", "y_train"))
    classes = len(raw.class_names) if raw.class_names else None
    y_train = _check_labels(raw.y_train, where.get("y_train", "y_train"), classes)
    if raw.x_test is not None:
        x_test = _inputs(raw, raw.x_test, "x_test")
        _check_pair(x_test, np.asarray(raw.y_test),
                    where.get("x_test", "x_test"), where.get("y_test", "y_test"))
        y_test = _check_labels(raw.y_test, where.get("y_test", "y_test"), classes)
        if x_test.shape[1:] != x_train.shape[1:]:
            raise DataError(f"{where.get('x_test', 'x_test')}: test inputs have shape {x_test.shape[1:]} but "
                            f"train inputs {x_train.shape[1:]}")
    else:
        x_test = y_test = None
    if classes is None:
        classes = int(max(y_train.max(), y_test.max() if y_test is not None else 0)) + 1
    class_names = raw.class_names or [str(i) for i in range(classes)]
    if classes < 2:
        raise DataError(f"{where.get('y_train', name)}: needs at least 2 classes, found {classes}")

    if x_test is None:  # carve the test split first, always the same one (TEST_SPLIT_SEED)
        n_test = int(round(TEST_FRACTION * len(y_train)))
        if n_test < 1 or n_test >= len(y_train):
            raise DataError(f"{name}: {len(y_train)} examples are too few to carve a test split")
        rest, test = stratified_split(y_train, n_test, TEST_SPLIT_SEED)
        x_test, y_test = x_train[test], y_train[test]
        x_train, y_train = x_train[rest], y_train[rest]
    if limit is not None and limit < len(y_train):
        _, keep = stratified_split(y_train, limit, seed)
        x_train, y_train = x_train[keep], y_train[keep]
    if test_limit is not None and test_limit < len(y_test):
        _, keep = stratified_split(y_test, test_limit, TEST_SPLIT_SEED)
        x_test, y_test = x_test[keep], y_test[keep]

    n_val = int(round(validation_fraction * len(y_train)))
    if n_val < 1:
        raise DataError(f"{name}: the validation split is empty (validation_fraction={validation_fraction} of "
                        f"{len(y_train)} training examples); use more training examples (a larger limit, "
                        f"--limit on a command line) or a larger validation_fraction")
    if n_val >= len(y_train):
        raise DataError(f"{name}: the training split is empty after carving {n_val} validation examples "
                        f"from {len(y_train)}; lower validation_fraction")
    rest, val = stratified_split(y_train, n_val, seed)
    x_val, y_val = x_train[val], y_train[val]
    x_train, y_train = x_train[rest], y_train[rest]

    dtype = np.int32 if raw.text else np.float32
    vocab_size = None
    if raw.text:
        vocab_size = int(max(x_train.max(), x_val.max(), x_test.max())) + 1
        if raw.vocab_size is not None:
            if vocab_size > raw.vocab_size:
                raise DataError(f"{name}: token id {vocab_size - 1} is outside the vocabulary of {raw.vocab_size}")
            vocab_size = raw.vocab_size
    return DataSplits(
        name=name,
        x_train=np.ascontiguousarray(x_train, dtype=dtype), y_train=y_train.astype(np.int32),
        x_val=np.ascontiguousarray(x_val, dtype=dtype), y_val=y_val.astype(np.int32),
        x_test=np.ascontiguousarray(x_test, dtype=dtype), y_test=y_test.astype(np.int32),
        input_shape=tuple(int(s) for s in x_train.shape[1:]),
        classes=classes, class_names=list(class_names), domain=raw.domain,
        baseline_error=raw.baseline_error, source=raw.source, vocab_size=vocab_size,
    )


# ------------------------------------------------------------------------------------------------------
# tf.data pipelines
# ------------------------------------------------------------------------------------------------------

def make_dataset(x, y, batch_size: int, *, shuffle: bool = False, seed: int = 0, augmentation=None,
                 epoch=None, mixing=None, drop_remainder: bool = False):
    """``tf.data``: slices -> shuffle (seeded) -> batch -> augmentation -> prefetch.

    Shuffling: with ``epoch`` (an integer ``tf.Variable`` that a callback sets at each epoch's start, as
    ``recipes.pipeline.EpochSeeds`` does) the order of an epoch is a function of ``(seed, epoch)`` alone,
    ``tf.random.experimental.stateless_shuffle`` keyed by both, so a resumed run sees the same order at
    epoch 7 as the run it replaces; without it, ``Dataset.shuffle(seed=seed, reshuffle_each_iteration=True)``.
    ``augmentation`` (a Keras layer, e.g. from ``recipes.augment.make_augmentation``) is mapped over whole
    batches with ``num_parallel_calls=AUTOTUNE`` and called with ``training=True`` (Keras preprocessing
    layers are identities otherwise).
    ``mixing`` (``mixing(images, labels, key) -> (images, soft_targets)``, e.g. ``recipes.augment.mix_batch``
    with its options bound) is mapped over the batches after the shuffle, before ``augmentation``; ``key`` is
    ``(seed + epoch, batch index)`` with ``epoch`` (0 without it), so the mix of a batch is repeatable.
    ``drop_remainder``: no last partial batch (data-parallel training splits every batch evenly).
    """
    import tensorflow as tf

    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if len(x) != len(y):
        raise DataError(f"x has {len(x)} examples but y has {len(y)} labels")
    if len(x) == 0:
        raise DataError("the split is empty: no examples to batch")
    if shuffle and epoch is not None:
        dataset = _epoch_keyed_batches(x, y, int(batch_size), int(seed), epoch, with_key=mixing is not None,
                                       drop_remainder=drop_remainder)
    else:
        dataset = tf.data.Dataset.from_tensor_slices((x, y))
        if shuffle:
            dataset = dataset.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
        dataset = dataset.batch(int(batch_size), drop_remainder=bool(drop_remainder))
        if mixing is not None:
            dataset = dataset.enumerate().map(lambda step, batch: (*batch, tf.stack([tf.constant(0, tf.int64), step])))
    if mixing is not None:
        base = tf.stack([tf.constant(int(seed), tf.int64), tf.constant(0, tf.int64)])
        dataset = dataset.map(lambda images, labels, key: mixing(images, labels, key + base),
                              num_parallel_calls=tf.data.AUTOTUNE)
    if augmentation is not None:
        dataset = dataset.map(lambda images, labels: (augmentation(images, training=True), labels),
                              num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)


def _epoch_keyed_batches(x, y, batch_size: int, seed: int, epoch, with_key: bool = False,
                         drop_remainder: bool = False):
    """Batches in the order ``stateless_shuffle(range(n), key=(seed, epoch))``, read when each epoch begins;
    ``with_key``: each with its ``(epoch, batch index)`` too."""
    import tensorflow as tf

    images, labels, count = tf.constant(x), tf.constant(y), len(x)  # eager tensors, captured by reference

    def order(_):
        now = tf.cast(tf.convert_to_tensor(epoch), tf.int64)
        key = tf.stack([tf.constant(seed, tf.int64), now])
        indices = tf.random.experimental.stateless_shuffle(tf.range(count, dtype=tf.int64), seed=key)
        batches = tf.data.Dataset.from_tensor_slices(indices).batch(batch_size, drop_remainder=drop_remainder)
        batches = batches.enumerate()
        return batches.map(lambda step, index: (index, tf.stack([now, step])))  # the key of the batch

    batches = tf.data.Dataset.from_tensors(0).flat_map(order)
    # flat_map hides the length; Keras wants it to know an epoch's end without running out of data
    steps = count // batch_size if drop_remainder else -(-count // batch_size)
    batches = batches.apply(tf.data.experimental.assert_cardinality(steps))
    if with_key:
        return batches.map(lambda index, key: (tf.gather(images, index), tf.gather(labels, index), key))
    return batches.map(lambda index, key: (tf.gather(images, index), tf.gather(labels, index)))


def pipeline_augmentation(splits: DataSplits, augmentation: str = "none", *, seed: int = 0,
                          placement: str | None = None, erasing: float = 0.0):
    """The augmentation layer the tf.data pipeline applies, or None when there is none or it runs in the model.

    It runs in the pipeline when that is its place (``placement="pipeline"``, or ``placement=None`` and
    ``recipes.augment.AUGMENT_IN_MODEL`` is False); otherwise ``recipes.modeling.training_model`` puts it in
    the model. The policy must fit ``splits.domain`` (``recipes.augment.check_policy``).
    """
    from recipes import augment

    policy = augment.check_policy(augmentation, splits.domain)
    erasing = augment.check_erasing(erasing, splits.domain)
    if (policy == "none" and not erasing) or augment.augment_in_model(placement):
        return None
    return augment.make_augmentation(policy, splits.input_shape, seed=seed, value_range=splits.value_range,
                                     erasing=erasing)


def train_dataset(splits: DataSplits, batch_size: int, *, augmentation: str = "none", seed: int = 0,
                  placement: str | None = None, epoch=None):
    """The training pipeline: shuffled every epoch (seeded; keyed by ``epoch`` when given), batched,
    prefetched, augmented here when :func:`pipeline_augmentation` says so."""
    layer = pipeline_augmentation(splits, augmentation, seed=seed, placement=placement)
    return make_dataset(splits.x_train, splits.y_train, batch_size, shuffle=True, seed=seed, augmentation=layer,
                        epoch=epoch)


def eval_dataset(x, y, batch_size: int):
    """A validation or test pipeline: in order, batched, prefetched, never augmented."""
    return make_dataset(x, y, batch_size, shuffle=False)
