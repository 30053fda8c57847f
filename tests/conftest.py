import gzip
import json
import os
import subprocess
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


# Notebook 04's tiny parameters: its own test, its spent-budget test and the rendered-report tests use them
TINY04 = dict(table2_settings=[[200, 100, 1], [200, 100, 2], [300, 100, 1]], dense_widths=[16, 8], fitness_images=120,
              generations=1, popsize=4, random_generations=2, random_start_seeds=2, pop_chunk=4, searches=["layer"])


@pytest.fixture(scope="session")
def run04(tmp_path_factory):
    """``IMGCLF_REPORTS=<tmp> ./run_all.sh 04 -y <TINY04>``, in the environment a user's shell has
    (MPLBACKEND=Agg included, as the test session sets it: run_all.sh must not pass it on). One run
    serves notebook 04's test and the rendered-report tests (under pytest-xdist they share the
    ``xdist_group`` "run04", so ``--dist loadgroup`` runs it once)."""
    data = _real_data_dir()
    if data is None:
        pytest.skip("real data not found: set IMGCLF_DATA or put the data sets in ../shared/data")
    out = tmp_path_factory.mktemp("reports")
    env = {**os.environ, "IMGCLF_REPORTS": str(out), "IMGCLF_DATA": str(data), "MPLBACKEND": "Agg",
           "PYTHONPATH": os.pathsep.join([str(REPO / "lib"), *filter(None, [os.environ.get("PYTHONPATH")])])}
    proc = subprocess.run([str(REPO / "run_all.sh"), "04", "-y", json.dumps(TINY04)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=1200)
    log = out / "logs" / "04_knn_slicing_evolution.smoke.log"
    assert proc.returncode == 0, proc.stdout + proc.stderr + (log.read_text()[-3000:] if log.exists() else "")
    return out
