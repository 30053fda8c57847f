"""TensorBoard runs (issue 22, point 4): one folder per training, named ``<profile>/<unit key>``, so
that two trainings with the same description, or a smoke and a paper run, never share a run."""

import json

import keras
import numpy as np
import pytest
from imgclf import runs as imgclf_runs
from imgclf import train
from imgclf.runs import Runs

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402


def _data(n=64):
    x = np.random.default_rng(0).random((n, 20)).astype("float32")
    return x, (x[:, :10].sum(1) > 5).astype("int64")


def _model():
    train.set_seed(3)
    inp = keras.Input((20,))
    m = keras.Model(inp, keras.layers.Dense(2, activation="softmax")(keras.layers.Dense(8, activation="relu")(inp)))
    m.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy")
    return m


def _steps(run_dir):
    """Epoch steps logged in ``run_dir/train`` (all event files together)."""
    acc = EventAccumulator(str(run_dir / "train")).Reload()
    return [e.step for e in acc.Tensors("epoch_loss")]


def _event_dirs(root):
    return sorted(str(p.parent.relative_to(root)) for p in root.rglob("events.out.tfevents.*"))


@pytest.fixture
def tb(tmp_path):
    yield tmp_path / "tensorboard"
    train.log_tensorboard_to(None)


def test_units_with_the_same_description_get_their_own_run_under_the_profile(tmp_path, tb):
    x, y = _data()

    def work(epochs):
        h = train.fit(_model(), x, y, epochs=epochs, batch_size=32, validation_data=(x, y), desc="CNN 10 classes")
        return {"loss": h["loss"]}

    for profile, epochs in (("smoke", 1), ("paper", 3)):
        train.log_tensorboard_to(tb / profile)
        runs = Runs(tmp_path / profile / "runs", log=lambda s: None)
        for e in (epochs, epochs + 1):  # two trainings, same desc, different settings
            runs.cached(work, name="CNN 10 classes", epochs=e)
        keys = sorted(p.name for p in (tmp_path / profile / "runs").iterdir() if p.is_dir())
        assert len(keys) == 2 and all(k.startswith("cnn-10-classes-") for k in keys)  # readable name first
        assert sorted(p.name for p in (tb / profile).iterdir()) == keys
        assert sorted(len(_steps(tb / profile / k)) for k in keys) == [epochs, epochs + 1]
    assert {d.split("/")[0] for d in _event_dirs(tb)} == {"smoke", "paper"}


def test_a_unit_with_two_fits_gets_two_runs_and_a_recomputed_unit_replaces_its_curves(tmp_path, tb):
    x, y = _data()
    train.log_tensorboard_to(tb)

    def work():
        train.fit(_model(), x, y, epochs=2, batch_size=32, desc="stage 1")
        train.fit(_model(), x, y, epochs=3, batch_size=32, desc="stage 2")
        return {}

    Runs(tmp_path / "runs", log=lambda s: None).cached(work, name="two stages")
    key = next(p.name for p in (tmp_path / "runs").iterdir() if p.is_dir())
    assert sorted(p.name for p in tb.iterdir()) == [key, f"{key}.fit2-stage_2"]
    assert _steps(tb / key) == [0, 1] and _steps(tb / f"{key}.fit2-stage_2") == [0, 1, 2]
    # recomputed (reuse=False): the same two folders, each with the new run's events only
    Runs(tmp_path / "runs", reuse=False, log=lambda s: None).cached(work, name="two stages")
    assert sorted(p.name for p in tb.iterdir()) == [key, f"{key}.fit2-stage_2"]
    assert _steps(tb / key) == [0, 1] and len(list((tb / key / "train").iterdir())) == 1


def test_a_resumed_unit_continues_its_curve(tmp_path, tb):
    x, y = _data(300)
    train.log_tensorboard_to(tb)

    class Kill(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    kill = [True]

    def work():
        train.fit(_model(), x, y, epochs=4, batch_size=32, seed=1, checkpoint_dir=imgclf_runs.current().checkpoint,
                  callbacks=[Kill()] if kill[0] else [], desc="resumable")
        return {}

    runs = Runs(tmp_path / "runs", log=lambda s: None)
    with pytest.raises(KeyboardInterrupt):
        runs.cached(work, name="r")
    key = imgclf_runs.call_key(work, {}, "r")
    backup = tmp_path / "runs" / key / "checkpoint" / "backup"
    done = max(json.loads(p.read_text())["epoch"] for p in backup.glob("epoch-*.json"))
    kill[0] = False
    Runs(tmp_path / "runs", log=lambda s: None).cached(work, name="r")
    assert [p.name for p in tb.iterdir()] == [key]
    steps = _steps(tb / key)
    assert sorted(set(steps)) == [0, 1, 2, 3] and done >= 1  # the resumed epochs follow the first ones


def test_fits_outside_a_unit_with_one_description_do_not_share_a_folder(tb):
    x, y = _data()
    train.log_tensorboard_to(tb)
    train.fit(_model(), x, y, epochs=1, batch_size=32, desc="fold")
    train.fit(_model(), x, y, epochs=2, batch_size=32, desc="fold")
    assert _event_dirs(tb) == ["fold-2/train", "fold/train"]
    assert _steps(tb / "fold") == [0] and _steps(tb / "fold-2") == [0, 1]
