"""recipes.data: loading, checking, splitting and the tf.data pipelines, on digits and tiny files."""

from __future__ import annotations

import gzip
import os

import numpy as np
import pytest
from sklearn.datasets import load_digits

import recipes.data as data
from recipes.data import DataError, DataSplits, load_data, make_dataset, stratified_split, train_dataset


# ---------------------------------------------------------------------------------------------- helpers

def _rows(*arrays: np.ndarray) -> list[bytes]:
    """Each example as bytes, sorted: a multiset of examples, to compare splits without indices."""
    return sorted(row.tobytes() for array in arrays for row in np.asarray(array, np.float32))


def _write_idx(path, array: np.ndarray, magic: int, gz: bool | None = None) -> str:
    array = np.asarray(array, np.uint8)
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    payload = header + array.tobytes()
    path = str(path)
    gz = path.endswith(".gz") if gz is None else gz
    with (gzip.open(path, "wb") if gz else open(path, "wb")) as handle:
        handle.write(payload)
    return path


def _idx_set(folder, n_train=40, n_test=20, gz=True, classes=10, size=6, seed=0) -> dict:
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    arrays = {
        "x_train": rng.integers(0, 256, (n_train, size, size)),
        "y_train": np.arange(n_train) % classes,
        "x_test": rng.integers(0, 256, (n_test, size, size)),
        "y_test": np.arange(n_test) % classes,
    }
    suffix = ".gz" if gz else ""
    for key, base in data.IDX_FILES.items():
        magic = data.IDX_IMAGES_MAGIC if key.startswith("x") else data.IDX_LABELS_MAGIC
        _write_idx(os.path.join(folder, base + suffix), arrays[key], magic, gz)
    return arrays


@pytest.fixture
def no_network(monkeypatch, tmp_path):
    """No ZOO_DATA_DIR, an empty Keras cache, and a keras.datasets download that fails (and is recorded)."""
    calls = []

    def refuse(name, **options):
        calls.append(name)
        raise Exception(f"URL fetch failure for {name}: no network in tests")

    monkeypatch.delenv("ZOO_DATA_DIR", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.setattr(data, "_keras_download", refuse)
    return calls


# ---------------------------------------------------------------------------------------------- digits

@pytest.fixture(scope="module")
def digits() -> DataSplits:
    return load_data("digits", seed=0)


def test_digits_shapes_dtypes_and_metadata(digits):
    assert digits.input_shape == (8, 8, 1) and digits.classes == 10 and digits.domain == "digits"
    assert digits.class_names == [str(i) for i in range(10)]
    assert digits.x_train.dtype == np.float32 and digits.y_train.dtype == np.int32
    assert digits.x_train.shape[1:] == (8, 8, 1)
    assert 0.0 <= digits.x_train.min() and digits.x_train.max() == 16.0  # raw scale, not normalized
    assert digits.value_range == (0.0, 16.0)
    assert digits.source == "sklearn" and 0 < digits.baseline_error < 0.05
    assert "train" in digits.describe() and "x_train" not in repr(digits)


def test_digits_sizes_add_up_and_splits_partition_the_data(digits):
    full = load_digits()
    n = len(full.target)
    assert len(digits.y_train) + len(digits.y_val) + len(digits.y_test) == n == 1797
    assert len(digits.y_test) == round(data.TEST_FRACTION * n)
    assert len(digits.y_val) == round(0.1 * (n - len(digits.y_test)))
    # Every original example appears exactly once across the three splits: disjoint and complete.
    assert _rows(digits.x_train, digits.x_val, digits.x_test) == _rows(full.images[..., None])
    # ... and with its own label.
    pairs = sorted((x.tobytes(), int(y)) for x, y in zip(full.images.astype(np.float32), full.target))
    ours = sorted((x[..., 0].tobytes(), int(y)) for xs, ys in ((digits.x_train, digits.y_train),
                  (digits.x_val, digits.y_val), (digits.x_test, digits.y_test)) for x, y in zip(xs, ys))
    assert ours == pairs


def test_digits_splits_are_stratified(digits):
    overall = np.bincount(load_digits().target) / 1797
    for y in (digits.y_val, digits.y_test, digits.y_train):
        counts = np.bincount(y, minlength=10)
        assert np.all(np.abs(counts - overall * len(y)) <= 1.0), counts


def test_digits_seeded_repeatable_and_the_test_split_never_moves():
    a = load_data("digits", seed=3)
    b = load_data("digits", seed=3)
    c = load_data("digits", seed=4)
    for key in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key))
    assert _rows(a.x_val) != _rows(c.x_val)  # another seed, another validation split ...
    np.testing.assert_array_equal(a.x_test, c.x_test)  # ... but the same test split
    # Validation is carved from train only: train + val is the same pool whatever the seed or fraction.
    d = load_data("digits", seed=4, validation_fraction=0.3)
    np.testing.assert_array_equal(a.x_test, d.x_test)
    assert _rows(a.x_train, a.x_val) == _rows(c.x_train, c.x_val) == _rows(d.x_train, d.x_val)
    assert len(d.y_val) == round(0.3 * (len(d.y_train) + len(d.y_val)))


def test_limit_keeps_a_stratified_subset_and_val_comes_from_it(digits):
    small = load_data("digits", limit=200, seed=1)
    assert len(small.y_train) + len(small.y_val) == 200 and len(small.y_val) == 20
    np.testing.assert_array_equal(small.x_test, digits.x_test)  # test untouched by limit
    assert np.all(np.bincount(small.y_train, minlength=10) >= 15)
    pool = set(_rows(digits.x_train, digits.x_val))
    assert set(_rows(small.x_train, small.x_val)) <= pool
    limited = load_data("digits", limit=200, test_limit=50)
    assert len(limited.y_test) == 50 and set(_rows(limited.x_test)) <= set(_rows(digits.x_test))
    assert np.all(np.bincount(limited.y_test, minlength=10) == 5)


def test_stratified_split_exact_counts_and_disjoint():
    y = np.array([0] * 7 + [1] * 3 + [2] * 1)
    rest, taken = stratified_split(y, 4, seed=0)
    assert len(taken) == 4 and len(rest) == 7
    assert set(rest).isdisjoint(taken) and set(rest) | set(taken) == set(range(11))
    assert np.bincount(y[taken], minlength=3)[0] in (2, 3)  # 4·7/11 = 2.55
    np.testing.assert_array_equal(stratified_split(y, 4, seed=0)[1], taken)


# ---------------------------------------------------------------------------------------------- bad options

@pytest.mark.parametrize("fraction", [0, 0.0, 1, 1.0, -0.1, 1.5, True, "0.1", float("nan")])
def test_validation_fraction_outside_open_interval(fraction):
    with pytest.raises(DataError, match="validation_fraction"):
        load_data("digits", validation_fraction=fraction)


def test_unknown_name_lists_the_allowed_names():
    with pytest.raises(DataError) as info:
        load_data("digitz")
    for name in data.DATASETS:
        assert name in str(info.value)
    assert isinstance(info.value, ValueError)
    with pytest.raises(DataError, match="did you mean 'fashion_mnist'"):
        load_data("fashion-mnist")


def test_missing_npz_and_bad_limit(tmp_path):
    with pytest.raises(DataError, match="nothere.npz: file not found"):
        load_data(str(tmp_path / "nothere.npz"))
    with pytest.raises(DataError, match="limit"):
        load_data("digits", limit=1)


def test_empty_validation_split_is_an_error():
    with pytest.raises(DataError, match="validation split is empty"):
        load_data("digits", limit=20, validation_fraction=0.01)


# ---------------------------------------------------------------------------------------------- IDX files

@pytest.mark.parametrize("gz", [True, False])
def test_idx_files_load_gz_and_raw(tmp_path, gz, no_network):
    arrays = _idx_set(tmp_path, gz=gz)
    splits = load_data("mnist", data_dir=str(tmp_path), validation_fraction=0.25)
    assert splits.input_shape == (6, 6, 1) and splits.classes == 10 and splits.domain == "digits"
    assert len(splits.y_train) == 30 and len(splits.y_val) == 10
    np.testing.assert_array_equal(splits.x_test[..., 0], arrays["x_test"].astype(np.float32))
    np.testing.assert_array_equal(splits.y_test, arrays["y_test"])
    assert _rows(splits.x_train, splits.x_val) == _rows(arrays["x_train"][..., None])
    assert splits.source == str(tmp_path) and no_network == []


def test_fashion_mnist_idx_from_subfolder_and_env(tmp_path, monkeypatch, no_network):
    _idx_set(tmp_path / "fashion-mnist")
    splits = load_data("fashion_mnist", data_dir=str(tmp_path))
    assert splits.class_names == data.FASHION_MNIST_CLASSES and splits.domain == "clothes"
    assert splits.baseline_error == pytest.approx(1 - 0.835)
    monkeypatch.setenv("ZOO_DATA_DIR", str(tmp_path))
    assert load_data("fashion_mnist").source == str(tmp_path / "fashion-mnist")


def test_idx_wrong_magic_names_the_file(tmp_path, no_network):
    _idx_set(tmp_path)
    bad = _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(40), data.IDX_IMAGES_MAGIC)
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.gz: wrong IDX magic number 2051") as info:
        load_data("mnist", data_dir=str(tmp_path))
    assert bad in str(info.value)


def test_idx_images_and_labels_of_different_lengths(tmp_path, no_network):
    _idx_set(tmp_path, gz=False)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(19), data.IDX_LABELS_MAGIC)
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte has 20 examples .*t10k-labels-idx1-ubyte has 19"):
        load_data("mnist", data_dir=str(tmp_path))


def test_idx_truncated_and_corrupt_gzip(tmp_path, no_network):
    _idx_set(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    payload = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(payload[:-7]))
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz: the header promises 40×6×6 images"):
        load_data("mnist", data_dir=str(tmp_path))
    path.write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz: cannot read"):
        load_data("mnist", data_dir=str(tmp_path))


def test_idx_labels_outside_classes(tmp_path, no_network):
    _idx_set(tmp_path)
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.full(40, 10), data.IDX_LABELS_MAGIC)
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte.gz: label 10 is outside \[0, 10\)"):
        load_data("mnist", data_dir=str(tmp_path))


def test_idx_missing_file_is_named(tmp_path, no_network):
    _idx_set(tmp_path)
    os.remove(tmp_path / "t10k-labels-idx1-ubyte.gz")
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.*is missing"):
        load_data("mnist", data_dir=str(tmp_path))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="train-images-idx3-ubyte.*not found"):
        load_data("fashion_mnist", data_dir=str(empty))
    assert no_network == []  # an explicit data_dir never falls back to a download


def test_not_on_disk_falls_back_to_keras_and_reports_where_it_looked(tmp_path, no_network, monkeypatch):
    with pytest.raises(DataError, match="mnist: not found on disk.*keras_home.*load_data\\(\\) failed"):
        load_data("mnist")
    assert no_network == ["mnist"]
    with pytest.raises(DataError, match="download=False"):
        load_data("mnist", download=False)
    assert no_network == ["mnist"]

    rng = np.random.default_rng(0)
    fake = ((rng.integers(0, 256, (50, 28, 28), dtype=np.uint8), np.arange(50) % 10),
            (rng.integers(0, 256, (20, 28, 28), dtype=np.uint8), np.arange(20) % 10))
    monkeypatch.setattr(data, "_keras_download", lambda name, **options: fake)
    splits = load_data("mnist")
    assert splits.source == "keras.datasets.mnist" and splits.input_shape == (28, 28, 1)
    assert len(splits.y_test) == 20 and len(splits.y_train) + len(splits.y_val) == 50


# ---------------------------------------------------------------------------------------------- .npz files

def test_npz_with_test_arrays(tmp_path):
    rng = np.random.default_rng(0)
    x_train, y_train = rng.random((60, 5, 5, 3)).astype(np.float32), np.arange(60) % 3
    x_test, y_test = rng.random((9, 5, 5, 3)).astype(np.float32), np.arange(9) % 3
    path = tmp_path / "mine.npz"
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
             class_names=np.array(["a", "b", "c"]))
    splits = load_data(str(path), validation_fraction=0.2)
    assert splits.name == "mine" and splits.class_names == ["a", "b", "c"] and splits.classes == 3
    assert splits.input_shape == (5, 5, 3) and splits.source == str(path)
    np.testing.assert_array_equal(splits.x_test, x_test)
    assert len(splits.y_val) == 12 and _rows(splits.x_train, splits.x_val) == _rows(x_train)


def test_npz_without_test_arrays_carves_a_test_split(tmp_path):
    x = np.random.default_rng(1).integers(0, 256, (100, 4, 4)).astype(np.uint8)
    y = np.arange(100) % 4
    np.savez(tmp_path / "a.npz", x_train=x, y_train=y)
    splits = load_data(str(tmp_path / "a.npz"), domain="digits")
    assert splits.input_shape == (4, 4, 1) and splits.domain == "digits"
    assert len(splits.y_test) == 20 and np.all(np.bincount(splits.y_test) == 5)
    assert _rows(splits.x_train, splits.x_val, splits.x_test) == _rows(x[..., None])


def test_npz_object_arrays_are_refused(tmp_path):
    path = tmp_path / "pickled.npz"
    ragged = np.empty(3, dtype=object)
    ragged[:] = [[1, 2], [3], [4, 5, 6]]
    np.savez(path, x_train=ragged, y_train=np.array([0, 1, 0]))
    with pytest.raises(DataError, match="pickled.npz: x_train cannot be read without pickle"):
        load_data(str(path))


def test_a_text_file_named_npz_is_not_an_archive_not_a_pickle(tmp_path):
    path = tmp_path / "x.npz"
    path.write_text("hello")  # np.load alone would say "contains pickled (object) data"
    with pytest.raises(DataError, match="x.npz: not a readable .npz archive") as info:
        load_data(str(path))
    assert "pickle" not in str(info.value)


@pytest.mark.parametrize("case, message", [
    ("nan", r"bad.npz\[x_train\]: 1 values are NaN or inf"),
    ("inf", r"bad.npz\[x_test\]: 1 values are NaN or inf"),
    ("lengths", r"bad.npz\[x_train\] has 30 examples but .*bad.npz\[y_train\] has 29"),
    ("negative", r"bad.npz\[y_train\]: label -1 is outside"),
    ("names", r"bad.npz\[y_test\]: label 3 is outside \[0, 3\)"),
    ("empty", r"bad.npz\[x_train\]: the split is empty"),
    ("half_test", r"bad.npz: has x_test but no y_test"),
    ("no_labels", r"bad.npz: missing y_train"),
    ("onehot", r"bad.npz\[y_train\]: labels must be one integer class id"),
])
def test_npz_bad_data_names_file_and_split(tmp_path, case, message):
    x = np.ones((30, 4, 4, 1), np.float32)
    y = np.arange(30) % 3
    arrays = dict(x_train=x, y_train=y, x_test=x[:6].copy(), y_test=y[:6].copy())
    if case == "nan":
        arrays["x_train"] = x.copy()
        arrays["x_train"][3, 1, 1, 0] = np.nan
    elif case == "inf":
        arrays["x_test"][0, 0, 0, 0] = np.inf
    elif case == "lengths":
        arrays["y_train"] = y[:29]
    elif case == "negative":
        arrays["y_train"] = y - 1
    elif case == "names":
        arrays["class_names"] = np.array(["a", "b", "c"])
        arrays["y_test"] = np.array([0, 1, 2, 3, 0, 1])
    elif case == "empty":
        arrays["x_train"], arrays["y_train"] = x[:0], y[:0]
    elif case == "half_test":
        del arrays["y_test"]
    elif case == "no_labels":
        del arrays["y_train"]
    elif case == "onehot":
        arrays["y_train"] = np.eye(3)[y]
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataError, match=message):
        load_data(str(tmp_path / "bad.npz"))


def test_npz_of_integer_tokens_is_text(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "tokens.npz", x_train=rng.integers(0, 50, (40, 12)), y_train=np.arange(40) % 2)
    splits = load_data(str(tmp_path / "tokens.npz"))
    assert splits.domain == "text" and splits.is_text and splits.input_shape == (12,)
    assert splits.x_train.dtype == np.int32 and splits.vocab_size <= 50


# ---------------------------------------------------------------------------------------------- folders

def _save_png(path, array):
    keras = pytest.importorskip("keras")
    try:
        keras.utils.save_img(str(path), array, scale=False)
    except ImportError as error:  # keras.utils.save_img needs PIL
        pytest.skip(f"cannot write PNG files without PIL: {error}")


def _image_folder(root, per_class=10, size=(6, 7), channels=3):
    rng = np.random.default_rng(0)
    originals = {}
    for label, name in enumerate(["cats", "dogs"]):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            image = rng.integers(0, 256, (*size, channels)).astype(np.float32)
            _save_png(root / name / f"{i}.png", image)
            originals[(name, i)] = image
    return originals


def test_folder_of_class_subfolders(tmp_path):
    pytest.importorskip("PIL", reason="PIL writes the PNG files of this test")
    originals = _image_folder(tmp_path / "pets")
    splits = load_data(str(tmp_path / "pets"), validation_fraction=0.25)
    assert splits.class_names == ["cats", "dogs"] and splits.classes == 2 and splits.name == "pets"
    assert splits.input_shape == (6, 7, 3) and splits.domain == "natural"
    assert len(splits.y_test) == 4 and len(splits.y_train) + len(splits.y_val) == 16
    assert _rows(splits.x_train, splits.x_val, splits.x_test) == _rows(np.stack(list(originals.values())))
    resized = load_data(str(tmp_path / "pets"), image_size=(4, 4), domain="clothes")
    assert resized.input_shape == (4, 4, 3) and resized.domain == "clothes"


def test_folder_grayscale_and_bad_folders(tmp_path):
    pytest.importorskip("PIL", reason="PIL writes the PNG files of this test")
    _image_folder(tmp_path / "gray", per_class=5, channels=1)
    assert load_data(str(tmp_path / "gray")).input_shape == (6, 7, 1)
    _save_png(tmp_path / "gray" / "cats" / "big.png", np.zeros((9, 9, 1)))
    with pytest.raises(DataError, match="different sizes"):
        load_data(str(tmp_path / "gray"))
    (tmp_path / "gray" / "cats" / "big.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="big.png: not a readable image"):
        load_data(str(tmp_path / "gray"))
    (tmp_path / "one" / "only").mkdir(parents=True)
    with pytest.raises(DataError, match="one: needs one sub-folder per class, at least 2"):
        load_data(str(tmp_path / "one"))
    (tmp_path / "one" / "empty").mkdir()
    _save_png(tmp_path / "one" / "only" / "0.png", np.zeros((3, 3, 1)))
    with pytest.raises(DataError, match="empty: class folder has no images"):
        load_data(str(tmp_path / "one"))


def test_a_folder_of_idx_files_points_to_the_right_name(tmp_path):
    _idx_set(tmp_path / "fm")
    with pytest.raises(DataError, match=r"fm: needs one sub-folder per class.*IDX files.*data_dir"):
        load_data(str(tmp_path / "fm"))


# ---------------------------------------------------------------------------------------------- pipelines

def test_make_dataset_batches_shuffles_seeded_and_reshuffles():
    x = np.arange(20, dtype=np.float32).reshape(20, 1)
    y = np.arange(20, dtype=np.int32)
    plain = [b[1].numpy() for b in make_dataset(x, y, 8)]
    assert [len(b) for b in plain] == [8, 8, 4] and np.concatenate(plain).tolist() == list(range(20))
    ds = make_dataset(x, y, 8, shuffle=True, seed=5)
    epoch1 = np.concatenate([b[1].numpy() for b in ds])
    epoch2 = np.concatenate([b[1].numpy() for b in ds])
    again = np.concatenate([b[1].numpy() for b in make_dataset(x, y, 8, shuffle=True, seed=5)])
    assert sorted(epoch1) == list(range(20)) and epoch1.tolist() != list(range(20))
    assert epoch1.tolist() != epoch2.tolist()  # reshuffled each epoch
    np.testing.assert_array_equal(epoch1, again)  # seeded
    with pytest.raises(DataError, match="x has 20 examples but y has 19"):
        make_dataset(x, y[:19], 8)
    with pytest.raises(ValueError, match="batch_size"):
        make_dataset(x, y, 0)


def test_train_dataset_applies_the_policy_only_in_pipeline_placement(digits):
    pipeline = np.concatenate([b[0].numpy() for b in train_dataset(digits, 256, augmentation="digits",
                                                                    placement="pipeline")])
    model = np.concatenate([b[0].numpy() for b in train_dataset(digits, 256, augmentation="digits",
                                                                 placement="model")])
    assert _rows(model) == _rows(digits.x_train)  # left to the model: the pipeline only shuffles
    assert _rows(pipeline) != _rows(digits.x_train)
    assert pipeline.shape == digits.x_train.shape and pipeline.min() >= 0 and pipeline.max() <= 16.0 + 1e-4
    with pytest.raises(ValueError, match="augmentation='clothes' does not fit digits"):
        train_dataset(digits, 32, augmentation="clothes")


# ---------------------------------------------------------------------------------------------- real data

def _fashion_dir() -> str | None:
    for folder in filter(None, [os.environ.get("ZOO_DATA_DIR"), data.SYSTEM_FASHION_MNIST]):
        for candidate in (folder, os.path.join(folder, "fashion-mnist"), os.path.join(folder, "fashion_mnist")):
            if os.path.isfile(os.path.join(candidate, "train-images-idx3-ubyte.gz")) or \
                    os.path.isfile(os.path.join(candidate, "train-images-idx3-ubyte")):
                return candidate
    return None


@pytest.mark.data
@pytest.mark.skipif(_fashion_dir() is None, reason="Fashion-MNIST IDX files not in ZOO_DATA_DIR or "
                    "/usr/share/datasets/fashion-mnist (apt-get install dataset-fashion-mnist)")
def test_real_fashion_mnist():
    splits = load_data("fashion_mnist", data_dir=_fashion_dir(), test_limit=1000, download=False)
    assert len(splits.y_train) + len(splits.y_val) == 60000 and len(splits.y_val) == 6000
    assert len(splits.y_test) == 1000 and np.all(np.bincount(splits.y_test) == 100)
    assert np.all(np.bincount(np.concatenate([splits.y_train, splits.y_val])) == 6000)
    assert splits.input_shape == (28, 28, 1) and splits.value_range == (0.0, 255.0)
    assert splits.class_names[0] == "T-shirt/top" and splits.class_names[9] == "Ankle boot"


def test_imdb_and_cifar10_through_keras_datasets(monkeypatch, no_network):
    rng = np.random.default_rng(0)
    reviews = [list(rng.integers(1, 30, rng.integers(3, 15))) for _ in range(40)]
    calls = {}

    def fake(name, **options):
        calls[name] = options
        if name == "imdb":
            return (reviews[:30], np.arange(30) % 2), (reviews[30:], np.arange(10) % 2)
        images = rng.integers(0, 256, (30, 32, 32, 3), dtype=np.uint8)
        return (images[:20], (np.arange(20) % 10)[:, None]), (images[20:], (np.arange(10) % 10)[:, None])

    monkeypatch.setattr(data, "_keras_download", fake)
    imdb = load_data("imdb", num_words=30, maxlen=8)
    assert calls["imdb"] == {"num_words": 30}
    assert imdb.domain == "text" and imdb.input_shape == (8,) and imdb.x_train.dtype == np.int32
    assert imdb.class_names == ["negative", "positive"] and imdb.baseline_error is None
    assert imdb.vocab_size == 30 and len(imdb.y_test) == 10
    short = reviews[30][-8:]  # pre-padded with 0 / pre-truncated to the last maxlen tokens
    np.testing.assert_array_equal(imdb.x_test[0], [0] * (8 - len(short)) + short)
    cifar = load_data("cifar10", validation_fraction=0.5)
    assert cifar.input_shape == (32, 32, 3) and cifar.domain == "natural" and cifar.classes == 10
    assert cifar.class_names[0] == "airplane" and cifar.y_train.ndim == 1
    with pytest.raises(DataError, match="imdb"):
        load_data("imdb", domain="natural")
