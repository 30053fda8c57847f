"""A damaged checkpoint never blocks a unit for good: a weights file cut short, a record that is not
whole JSON, another model's weights, a cut epoch log or best-epoch record, Keras' own backup files
cut by a kill, a real SIGKILL mid-training; and a stored unit record that is damaged or foreign is
recomputed with a warning naming it."""

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from training_helpers import Kill, small_model

from imgclf import runs, train
from imgclf.runs import DamagedRecord, Runs
from imgclf.train import DamagedCheckpoint

LIB = str(Path(__file__).resolve().parents[1] / "lib")
X = np.random.default_rng(0).random((240, 20)).astype("float32")
Y = (X[:, :10].sum(1) > 5).astype("int64")
KW = dict(epochs=5, batch_size=32, validation_data=(X[:50], Y[:50]), seed=7, restore_best="val_loss")


def _model(width=16):
    return small_model(width)


def _Kill(at):
    return Kill(at, batch=2)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    m = _model()
    h = train.fit(m, X, Y, checkpoint_dir=tmp_path_factory.mktemp("ref") / "c", **KW)
    return m.get_weights(), h


def _cut_run(ckpt, at=3):
    with pytest.raises(KeyboardInterrupt):
        train.fit(_model(), X, Y, checkpoint_dir=ckpt, callbacks=[_Kill(at)], **KW)
    return ckpt / "backup"


def _resume(ckpt):
    m = _model()
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        h = train.fit(m, X, Y, checkpoint_dir=ckpt, **KW)
    msgs = [str(x.message) for x in w if issubclass(x.category, DamagedCheckpoint)]
    return m, h, msgs


def _same(reference, m, h):
    for a, b in zip(reference[0], m.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert h["loss"] == reference[1]["loss"] and h["val_loss"] == reference[1]["val_loss"] and h["epochs_run"] == 5


def _truncate(path: Path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def test_backups_are_whole_two_states_with_checksums(tmp_path):
    backup = _cut_run(tmp_path / "c")
    assert sorted(p.name for p in backup.iterdir()) == ["epoch-00002.json", "epoch-00002.weights.h5",
                                                         "epoch-00003.json", "epoch-00003.weights.h5"]
    rec = json.loads((backup / "epoch-00003.json").read_text())
    assert rec["epoch"] == 3 and len(rec["sha256"]) == 64


def test_a_truncated_newest_weights_file_is_named_and_the_state_before_it_used(tmp_path, reference):
    backup = _cut_run(tmp_path / "c")
    _truncate(backup / "epoch-00003.weights.h5")
    m, h, msgs = _resume(tmp_path / "c")
    assert h["resumed_at_epoch"] == 2
    assert any(str(backup / "epoch-00003.weights.h5") in s and "sha256 differs" in s for s in msgs), msgs
    _same(reference, m, h)  # the epoch it lost was trained again: same numbers as a run never killed


def test_a_cut_record_is_named_and_the_state_before_it_used(tmp_path, reference):
    backup = _cut_run(tmp_path / "c")
    _truncate(backup / "epoch-00003.json", 0.4)
    m, h, msgs = _resume(tmp_path / "c")
    assert h["resumed_at_epoch"] == 2
    assert any(str(backup / "epoch-00003.json") in s and "not whole JSON" in s for s in msgs), msgs
    _same(reference, m, h)


def test_every_state_damaged_restarts_the_unit_at_epoch_0_and_removes_them(tmp_path, reference):
    backup = _cut_run(tmp_path / "c")
    _truncate(backup / "epoch-00003.weights.h5")
    (backup / "epoch-00002.weights.h5").write_bytes(b"<html><body>503 Service Unavailable</body></html>")
    m, h, msgs = _resume(tmp_path / "c")
    assert h["resumed_at_epoch"] == 0
    assert any("epoch-00002.weights.h5" in s for s in msgs) and any("restarts at epoch 0" in s for s in msgs), msgs
    _same(reference, m, h)
    m2, h2, msgs2 = _resume(tmp_path / "c")  # and it never trips over them again
    assert msgs2 == [] and h2["resumed_at_epoch"] == 5


def test_weights_of_another_model_are_not_loaded(tmp_path, reference):
    backup = _cut_run(tmp_path / "c")
    other = _model(width=8)
    sha = train._save_weights_atomic(other, backup / "epoch-00003.weights.h5")  # a whole file, wrong model
    (backup / "epoch-00003.json").write_text(json.dumps({"epoch": 3, "weights": "x", "sha256": sha}))
    m, h, msgs = _resume(tmp_path / "c")
    assert h["resumed_at_epoch"] == 2
    assert any("does not load into this model" in s and "epoch-00003.weights.h5" in s for s in msgs), msgs
    _same(reference, m, h)


def test_a_cut_epoch_log_line_is_skipped_and_a_lost_history_restarts(tmp_path, reference):
    ckpt = tmp_path / "c"
    _cut_run(ckpt)
    with open(ckpt / "epochs.jsonl", "ab") as f:
        f.write(b'{"epoch": 3, "loss": 0.4')  # a kill mid-line: the next record must not be glued to it
    m, h, msgs = _resume(ckpt)
    assert h["resumed_at_epoch"] == 3 and any("epochs.jsonl" in s and "line(s) [4]" in s for s in msgs), msgs
    _same(reference, m, h)
    # the history of epochs before the resumed one is part of the result: without it, start again
    ckpt2 = tmp_path / "d"
    _cut_run(ckpt2)
    lines = (ckpt2 / "epochs.jsonl").read_text().splitlines()
    (ckpt2 / "epochs.jsonl").write_text("\n".join(lines[1:]) + "\n")
    m, h, msgs = _resume(ckpt2)
    assert h["resumed_at_epoch"] == 0 and any("lacks epoch(s) [0]" in s for s in msgs), msgs
    _same(reference, m, h)


def test_a_damaged_best_epoch_record_restarts_the_unit(tmp_path, reference):
    ckpt = tmp_path / "c"
    _cut_run(ckpt)
    (ckpt / "best" / "best.json").write_bytes(b'{"best": 0.6')
    m, h, msgs = _resume(ckpt)
    assert h["resumed_at_epoch"] == 0
    assert any(str(ckpt / "best" / "best.json") in s and "restarts at epoch 0" in s for s in msgs), msgs
    _same(reference, m, h)


def test_keras_backup_files_cut_by_a_kill_are_named(tmp_path, reference):
    """Checkpoints of runs before this change are Keras BackupAndRestore's: latest.weights.h5 and
    training_metadata.json. A kill while Keras wrote them used to block the unit for good."""
    ckpt = tmp_path / "c"
    backup = ckpt / "backup"
    backup.mkdir(parents=True)
    _model().save_weights(backup / "latest.weights.h5")
    (backup / "training_metadata.json").write_text('{"epoch": 2, "batch": 0}')
    _truncate(backup / "latest.weights.h5", 0.6)
    m, h, msgs = _resume(ckpt)
    assert h["resumed_at_epoch"] == 0
    assert any(str(backup / "latest.weights.h5") in s and "damaged" in s for s in msgs), msgs
    _same(reference, m, h)
    assert not (backup / "latest.weights.h5").exists()
    # the metadata cut instead (an HTML error page in its place: not JSON at all)
    shutil.rmtree(ckpt)
    backup.mkdir(parents=True)
    _model().save_weights(backup / "latest.weights.h5")
    (backup / "training_metadata.json").write_text("<html>")
    m, h, msgs = _resume(ckpt)
    assert h["resumed_at_epoch"] == 0 and any("training_metadata.json is not whole JSON" in s for s in msgs), msgs


def test_h5_damage_names_what_is_wrong(tmp_path):
    good = tmp_path / "good.weights.h5"
    _model().save_weights(good)
    assert train.h5_damage(good) is None
    html = tmp_path / "page.h5"
    html.write_text("<!DOCTYPE html><html>Sign in</html>")
    assert "HTML page" in train.h5_damage(html)
    cut = tmp_path / "cut.h5"
    cut.write_bytes(good.read_bytes()[:3000])
    assert "cut short" in train.h5_damage(cut)
    (tmp_path / "empty.h5").write_bytes(b"")
    assert train.h5_damage(tmp_path / "empty.h5") == "is empty"


KILLED_CHILD = textwrap.dedent("""
    import sys, time, numpy as np, keras
    sys.path.insert(0, sys.argv[2])
    from test_damaged_checkpoints import _model, X, Y, KW
    from imgclf import train

    class Slow(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            time.sleep(1.5)

    train.fit(_model(), X, Y, checkpoint_dir=sys.argv[1], callbacks=[Slow()], **KW)
""")


def test_a_real_sigkill_mid_training_resumes_with_the_same_numbers(tmp_path, reference):
    ckpt = tmp_path / "c"
    env = {**os.environ, "PYTHONPATH": LIB + os.pathsep + os.environ.get("PYTHONPATH", "")}
    child = subprocess.Popen([sys.executable, "-c", KILLED_CHILD, str(ckpt), str(Path(__file__).parent)], env=env,
                             stderr=subprocess.PIPE, text=True)
    t0 = time.time()
    while not (ckpt / "backup" / "epoch-00002.json").exists():
        assert child.poll() is None and time.time() - t0 < 300, child.stderr.read() if child.poll() else "slow"
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    m, h, msgs = _resume(ckpt)
    assert h["resumed_at_epoch"] >= 2 and msgs == []
    _same(reference, m, h)


# -- stored unit records --------------------------------------------------------------------
def _count(calls):
    def work(lr):
        calls.append(1)
        return {"acc": 0.75, "values": list(range(50))}
    return work


@pytest.mark.parametrize("damage", ["truncated", "binary", "list", "other key", "no result", "empty"])
def test_a_damaged_or_foreign_unit_record_is_recomputed_with_a_warning_naming_it(tmp_path, damage):
    calls = []
    Runs(tmp_path, log=lambda s: None).cached(_count(calls), name="a", lr=1)
    Runs(tmp_path, log=lambda s: None).cached(_count(calls), name="b", lr=2)
    key = runs.call_key(_count(calls), {"lr": 1}, "a")
    rec_path = tmp_path / key / "result.json"
    whole = rec_path.read_bytes()
    if damage == "truncated":
        rec_path.write_bytes(whole[: len(whole) // 2])
    elif damage == "binary":
        rec_path.write_bytes(os.urandom(300))
    elif damage == "list":
        rec_path.write_text("[1, 2, 3]")
    elif damage == "other key":  # another unit's whole record copied over this one
        shutil.copy(tmp_path / runs.call_key(_count(calls), {"lr": 2}, "b") / "result.json", rec_path)
    elif damage == "no result":
        rec = json.loads(whole)
        del rec["result"]
        rec_path.write_text(json.dumps(rec))
    else:
        rec_path.write_bytes(b"")
    assert len(calls) == 2
    with pytest.warns(DamagedRecord, match=str(rec_path).replace(".", r"\.")):
        out = Runs(tmp_path, log=lambda s: None).cached(_count(calls), name="a", lr=1)
    assert out == {"acc": 0.75, "values": list(range(50))} and len(calls) == 3  # recomputed
    rec = json.loads(rec_path.read_text())
    assert rec["key"] == key and rec["result"] == out  # whole again, of its own key
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Runs(tmp_path, log=lambda s: None).cached(_count(calls), name="a", lr=1)
    assert len(calls) == 3  # and reused from then on


def test_damaged_unit_arrays_are_named(tmp_path):
    unit = runs.Unit("a", "a-key", tmp_path / "a-key")
    unit.save_arrays(w=np.arange(1000))
    _truncate(unit.dir / "arrays.npz")
    with pytest.raises(OSError, match=r"arrays\.npz.*delete the folder"):
        unit.load_arrays()


def test_a_damaged_training_time_log_is_named_and_started_afresh(tmp_path):
    p = tmp_path / "train_seconds.txt"
    p.write_bytes(b"1.5\n2.25\n3.\xff\x00cut")
    with pytest.warns(DamagedCheckpoint, match=rf"training-time log {p} is damaged"):
        clock = train.TrainingClock(p)
    assert clock.seconds == []
    clock.on_epoch_begin(0)
    clock.on_test_begin()
    assert len(clock.seconds) == 1 and [float(v) for v in p.read_text().split()] == clock.seconds
    good = train.TrainingClock(p)  # whole again: read back without a warning
    assert good.seconds == clock.seconds


def test_a_damaged_generation_log_is_named_and_never_blocks_the_evolution(tmp_path):
    """CMA-ES/PSO checkpoints (runs.GenerationLog): a cut file or one of other settings is named and
    the run starts over; a generation whose candidates differ from the record resumes from there."""
    path = tmp_path / "layer1.json"
    log = runs.GenerationLog(path, {"method": "cma", "seed": 1})
    cands = [np.full((4, 3), g, np.float32) for g in range(3)]
    for g in range(3):
        log.add(cands[g], np.arange(4.0) + g, {"generation": g})
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])  # cut by a kill outside the atomic write
    with pytest.warns(DamagedRecord, match=rf"{path}.*damaged.*starts over"):
        assert len(runs.GenerationLog(path, {"method": "cma", "seed": 1})) == 0
    path.write_bytes(whole)
    with pytest.warns(DamagedRecord, match="other settings"):
        assert len(runs.GenerationLog(path, {"method": "cma", "seed": 2})) == 0
    again = runs.GenerationLog(path, {"method": "cma", "seed": 1})
    assert again.replay(0, cands[0]).tolist() == [0, 1, 2, 3]
    with pytest.warns(DamagedRecord, match="resuming from generation 1"):
        assert again.replay(1, cands[2]) is None  # not the recorded candidates
    assert len(again) == 1  # generation 0 kept, the rest is evaluated again
