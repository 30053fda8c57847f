import gzip
import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # as imgclf.logs
os.environ.setdefault("MPLBACKEND", "Agg")


def _real_data_dir() -> Path | None:
    for cand in (os.environ.get("IMGCLF_DATA"), REPO.parent / "shared" / "data"):
        if cand and (Path(cand) / "mnist").is_dir():
            return Path(cand).resolve()
    return None


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The real data sets (IMGCLF_DATA or ../shared/data); the test is skipped without them."""
    d = _real_data_dir()
    if d is None:
        pytest.skip("real data not found: set IMGCLF_DATA or put the data sets in ../shared/data")
    return d


def write_idx(path: Path, arr: np.ndarray) -> Path:
    """Write ``arr`` (uint8) as a gzipped IDX file."""
    arr = np.asarray(arr, np.uint8)
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb") as f:
        f.write(header + arr.tobytes())
    return path


def pytest_collection_modifyitems(config, items):
    """Under a Keras backend other than TensorFlow, only the tests marked ``portable`` run."""
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    if backend == "tensorflow":
        return
    skip = pytest.mark.skip(reason=f"needs the TensorFlow backend (KERAS_BACKEND={backend}); not marked portable")
    for item in items:
        if "portable" not in item.keywords:
            item.add_marker(skip)
