"""Run units (imgclf.runs): stable keys, reuse, the time budget, resume inside a Keras fit, and the
MirroredStrategy helper on two logical CPUs."""

import json
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from training_helpers import Kill, small_model

from imgclf import reports, runs, train
from imgclf.runs import Runs


def test_a_finished_unit_is_reused_and_reuse_false_recomputes(tmp_path):
    calls = []

    def work(lr):
        calls.append(lr)
        runs.current().save_arrays(w=np.arange(3))
        return {"accuracy": np.float32(0.5), "history": np.array([1.0, 2.0])}

    first = Runs(tmp_path, log=lambda s: None).cached(work, lr=1)
    again = Runs(tmp_path, log=lambda s: None).cached(work, lr=1)
    assert first == again == {"accuracy": 0.5, "history": [1.0, 2.0]} and len(calls) == 1
    assert Runs(tmp_path, log=lambda s: None).find(work, lr=1).load_arrays()["w"].tolist() == [0, 1, 2]
    fresh = Runs(tmp_path, reuse=False, log=lambda s: None)
    fresh.cached(work, lr=1)
    assert len(calls) == 2 and fresh.summary()["ran"] == 1


def test_an_unfinished_unit_is_run_again(tmp_path):
    r = Runs(tmp_path, log=lambda s: None)
    seen = []

    def work():
        seen.append(runs.current().checkpoint.exists())
        return 1

    key = runs.call_key(work, {})
    (tmp_path / key / "checkpoint").mkdir(parents=True)  # a unit killed mid-way: checkpoint, no result.json
    assert r.cached(work) == 1
    assert seen == [True] and not (tmp_path / key / "checkpoint").exists()  # resumed, then its checkpoint cleared
    assert json.loads((tmp_path / key / "result.json").read_text())["resumed"] is True


def test_budget_stops_new_units_and_the_next_run_goes_on(tmp_path, monkeypatch):
    now = [0.0]  # a clock that only the units move: the test does not depend on the machine's load
    monkeypatch.setattr(Runs, "elapsed_minutes", lambda self: now[0] / 60)

    def slow(n):
        now[0] += 1.2
        return n

    r = Runs(tmp_path, budget_minutes=1 / 60, log=lambda s: None)  # 1 s
    out = [r.cached(slow, name=n, n=n) for n in ("u1", "u2", "u3")]
    assert out == ["u1", None, None]
    assert r.summary()["partial"] and r.status() == "partial: 1 of 3 runs"
    now[0] = 0.0  # a new notebook run: its budget counts from its start
    r2 = Runs(tmp_path, budget_minutes=1 / 60, log=lambda s: None)
    out2 = [r2.cached(slow, name=n, n=n) for n in ("u1", "u2", "u3")]
    assert out2 == ["u1", "u2", None] and r2.reused == ["u1"] and r2.ran == ["u2"]
    r3 = Runs(tmp_path, log=lambda s: None)
    assert [r3.cached(slow, name=n, n=n) for n in ("u1", "u2", "u3")] == ["u1", "u2", "u3"]
    assert r3.status() == "complete: 3 of 3 runs (2 reused)"


def test_report_marks_a_budgeted_run_partial(tmp_path):
    rep = reports.Report("nb", {"profile": "smoke", "seed": 0}, root=tmp_path)
    rep.runs = Runs(tmp_path / "runs", budget_minutes=1e-9, log=lambda s: None)
    rep.runs.cached(lambda: 1, name="u")
    rep.finish()
    res = json.loads((tmp_path / "nb" / "results.json").read_text())
    assert res["partial"] == {"done": 0, "total": 1} and res["runs"]["skipped"] == ["u"]
    assert any("partial: 0 of 1 runs" in n for n in res["notes"])


def _model(width=16):
    return small_model(width)


def _Kill(at):
    return Kill(at, batch=3)

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch


def test_fit_resumes_from_the_last_finished_epoch_with_the_same_numbers(tmp_path):
    x = np.random.default_rng(0).random((300, 20)).astype("float32")
    y = (x[:, :10].sum(1) > 5).astype("int64")
    kw = dict(epochs=5, batch_size=32, validation_data=(x[:50], y[:50]), seed=7, restore_best="val_loss")
    ref = _model()
    h_ref = train.fit(ref, x, y, checkpoint_dir=tmp_path / "ref", **kw)
    m = _model()
    with pytest.raises(KeyboardInterrupt):
        train.fit(m, x, y, checkpoint_dir=tmp_path / "cut", callbacks=[_Kill(3)], **kw)
    resumed = _model()  # a new process would build the model again from scratch
    h = train.fit(resumed, x, y, checkpoint_dir=tmp_path / "cut", **kw)
    assert h["resumed_at_epoch"] == 3 and h["epochs_run"] == 5 and len(h["val_loss"]) == 5
    for a, b in zip(ref.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert h["val_loss"] == h_ref["val_loss"] and h["loss"] == h_ref["loss"]


def test_plain_backup_and_restore_is_not_enough(tmp_path):
    """The control for the test above: Keras' BackupAndRestore alone restores weights, optimizer and
    epoch, but a restarted run shuffles and drops out differently, so its weights differ."""
    x = np.random.default_rng(0).random((300, 20)).astype("float32")
    y = (x[:, :10].sum(1) > 5).astype("int64")
    ref = _model()
    ref.fit(x, y, epochs=5, batch_size=32, verbose=0)
    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "b"), delete_checkpoint=False)
    with pytest.raises(KeyboardInterrupt):
        _model().fit(x, y, epochs=5, batch_size=32, verbose=0, callbacks=[backup, _Kill(3)])
    resumed = _model()
    resumed.fit(x, y, epochs=5, batch_size=32, verbose=0,
                callbacks=[keras.callbacks.BackupAndRestore(str(tmp_path / "b"))])
    assert max(np.abs(u - v).max() for u, v in zip(ref.get_weights(), resumed.get_weights())) > 1e-4


def test_mirrored_strategy_on_two_logical_cpus_trains_like_one_device():
    code = textwrap.dedent("""
        import json, numpy as np, tensorflow as tf, keras
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from imgclf import train
        x = np.random.default_rng(0).random((256, 8)).astype("float32"); y = (x.sum(1) > 4).astype("int64")
        out = {}
        for kind in ("CPU", "none"):
            s = train.strategy("CPU") if kind == "CPU" else tf.distribute.get_strategy()
            with s.scope():
                keras.utils.set_random_seed(0)
                m = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4, activation="relu"), keras.layers.Dense(2)])
                m.compile(keras.optimizers.SGD(0.1), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
            m.fit(x, y, epochs=2, batch_size=64, shuffle=False, verbose=0)
            out[kind] = dict(replicas=s.num_replicas_in_sync, w=[w.tolist() for w in m.get_weights()])
        print(json.dumps(out))
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["CPU"]["replicas"] == 2 and out["none"]["replicas"] == 1
    for a, b in zip(out["CPU"]["w"], out["none"]["w"]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_every_fit_writes_tensorboard_logs_when_asked(tmp_path):
    x = np.random.default_rng(0).random((64, 20)).astype("float32")
    y = (x[:, :10].sum(1) > 5).astype("int64")
    train.log_tensorboard_to(tmp_path / "tb")
    try:
        train.fit(_model(), x, y, epochs=2, batch_size=32, validation_data=(x, y), desc="CNN 128 [4000/1000]")
    finally:
        train.log_tensorboard_to(None)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "tb" / "CNN_128_4000_1000"
    acc = EventAccumulator(str(run / "train")).Reload()
    assert [e.step for e in acc.Tensors("epoch_loss")] == [0, 1]  # TF2 summaries are tensors
    assert (run / "validation").is_dir()
    train.fit(_model(), x, y, epochs=1, batch_size=32)  # off again: nothing new written
    assert sorted(p.name for p in (tmp_path / "tb").iterdir()) == ["CNN_128_4000_1000"]


def test_a_spent_budget_stops_a_unit_at_an_epoch_and_the_next_run_resumes_it(tmp_path, monkeypatch):
    x = np.random.default_rng(0).random((300, 20)).astype("float32")
    y = (x[:, :10].sum(1) > 5).astype("int64")
    now = [0.0]  # each epoch "takes" 0.3 s of a clock only the epochs move (not the machine's load)
    monkeypatch.setattr(Runs, "elapsed_minutes", lambda self: now[0] / 60)

    class Slow(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            now[0] += 0.3

    def work(slow=False, checkpoint=None):
        m = _model()
        ckpt = checkpoint or runs.current().checkpoint
        h = train.fit(m, x, y, epochs=4, batch_size=32, seed=1, checkpoint_dir=ckpt, callbacks=[Slow()] if slow else [])
        return {"w": [w.tolist() for w in m.get_weights()], "loss": h["loss"]}

    r = Runs(tmp_path, budget_minutes=0.5 / 60, log=lambda s: None)  # spent after the second epoch
    assert r.cached(work, name="u", slow=True) is None
    assert r.stopped == ["u"] and r.summary()["partial"]
    unit_dir = tmp_path / runs.call_key(work, {"slow": True}, "u")
    done = max(json.loads(p.read_text())["epoch"] for p in (unit_dir / "checkpoint" / "backup").glob("epoch-*.json"))
    assert 1 <= done < 4 and not (unit_dir / "result.json").exists()
    resumed = Runs(tmp_path, log=lambda s: None).cached(work, name="u", slow=True)
    straight = work(checkpoint=tmp_path / "ref")
    assert resumed == straight and len(resumed["loss"]) == 4


def test_a_unit_killed_after_its_last_epoch_keeps_its_trained_weights(tmp_path):
    """Every epoch ran and was backed up, then the process died before the unit's result was
    stored: running it again trains nothing and gives the trained model, not a fresh one."""
    x = np.random.default_rng(0).random((200, 20)).astype("float32")
    y = (x[:, :10].sum(1) > 5).astype("int64")
    ref = _model()
    train.fit(ref, x, y, epochs=3, batch_size=32, seed=2, checkpoint_dir=tmp_path / "c")
    again = _model()
    h = train.fit(again, x, y, epochs=3, batch_size=32, seed=2, checkpoint_dir=tmp_path / "c")
    assert h["resumed_at_epoch"] == 3 and len(h["loss"]) == 3
    for a, b in zip(ref.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_only_computes_the_named_unit_and_lists_the_units_used(tmp_path):
    calls = []

    def work(lr):
        calls.append(lr)
        return {"acc": lr / 10}

    full = Runs(tmp_path / "a", log=lambda s: None)
    full.cached(work, lr=1)
    full.cached(work, lr=2)
    keys = [u["key"] for u in full.summary()["units"]]
    assert len(keys) == 2 and all(u["reused"] is False for u in full.summary()["units"])
    calls.clear()
    stem = keys[1].rsplit("-", 1)[0]  # the key without its code hash names the same call
    one = Runs(tmp_path / "b", log=lambda s: None, only=stem)
    assert one.cached(work, lr=1) is None and one.cached(work, lr=2) == {"acc": 0.2}
    assert calls == [2]
    s = one.summary()
    assert s["partial"] and [u["key"] for u in s["units"]] == [keys[1]] and s["only"] == stem
    # the notebook's report of such a run (no budget) says why it is partial
    rep = reports.Report("02_x", {"profile": "paper", "seed": 0}, root=tmp_path / "reports")
    rep.runs = one
    rep.finish()
    res = json.loads((tmp_path / "reports" / "02_x" / "results.json").read_text())
    assert res["partial"] == {"done": 1, "total": 2} and any(f"only {stem} was asked for" in n for n in res["notes"])
