"""Run units keyed by the call and the code (imgclf.runs.Runs.cached): the key changes exactly when
an argument or the code the unit runs changes, and a stored unit knows the commit that made it."""

import importlib
import json
import sys
import textwrap
from dataclasses import dataclass

import numpy as np
import pytest
from imgclf import config, runs
from imgclf.runs import DamagedRecord, Runs, call_key, code_fingerprint, code_modules

pytestmark = pytest.mark.portable  # no TensorFlow here: runs under every Keras backend


@dataclass(frozen=True)
class Cfg(config.Common):
    epochs: int = 3
    shown_images: int = config.not_a_key(8)


def _quiet(tmp_path, **kw):
    return Runs(tmp_path, log=lambda s: None, **kw)


def test_call_key_changes_with_every_argument_but_not_with_display_settings():
    x = np.arange(12.0).reshape(3, 4)

    def f(cfg, x, seed):
        return 0

    k = call_key(f, dict(cfg=Cfg(), x=x, seed=0))
    assert k == call_key(f, dict(seed=0, x=x.copy(), cfg=Cfg()))  # order and identity do not matter
    assert k.startswith("test-call-key-changes")
    others = {call_key(f, dict(cfg=Cfg(epochs=4), x=x, seed=0)),
              call_key(f, dict(cfg=Cfg(), x=x + 1, seed=0)),
              call_key(f, dict(cfg=Cfg(), x=x.astype("float32"), seed=0)),
              call_key(f, dict(cfg=Cfg(), x=x, seed=1)),
              call_key(f, dict(cfg=Cfg(seed=5), x=x, seed=0))}
    assert k not in others and len(others) == 5
    # settings that change no result (not_a_key: figures, budget, where reports go) keep the key
    assert k == call_key(f, dict(cfg=Cfg(shown_images=2, budget_minutes=3.0, profile="smoke"), x=x, seed=0))


def _module(tmp_path, monkeypatch, body: str, name="unitmod_a"):
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(body))
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop(name, None)
    importlib.invalidate_caches()
    return importlib.import_module(name)


def test_code_fingerprint_follows_the_code_not_its_comments(tmp_path, monkeypatch):
    src = '''
        """A unit's module."""
        from imgclf.models import cnns  # a floor it calls

        def work(n):
            """Docstrings do not count."""
            return n * 2  # nor do comments
    '''
    m = _module(tmp_path, monkeypatch, src)
    fp = code_fingerprint(m.work)
    assert "imgclf.models.cnns" in code_modules(m.__name__)
    assert not any(mod.startswith(runs.NOT_CODE) for mod in code_modules(m.__name__))
    m2 = _module(tmp_path, monkeypatch, src.replace("nor do comments", "changed comment")
                 .replace("Docstrings do not count.", "Reworded."))
    assert code_fingerprint(m2.work) == fp
    m3 = _module(tmp_path, monkeypatch, src.replace("n * 2", "n * 3"))
    assert code_fingerprint(m3.work) != fp


def test_a_floor_the_unit_imports_is_part_of_its_code(tmp_path, monkeypatch):
    # code_modules follows imgclf imports only: check through a real floor of the library
    m = _module(tmp_path, monkeypatch, "from imgclf import metrics\n\ndef work():\n    return 1\n", "unitmod_b")
    assert "imgclf.metrics" in code_modules(m.__name__)
    m_plain = _module(tmp_path, monkeypatch, "def work():\n    return 1\n", "unitmod_c")
    assert code_modules(m_plain.__name__) == ["unitmod_c"]
    assert code_fingerprint(m.work) != code_fingerprint(m_plain.work)


def test_cached_reuses_recomputes_on_code_change_and_keeps_on_purpose(tmp_path, monkeypatch):
    calls = []
    src = "import builtins\n\ndef work(n):\n    builtins._calls.append(n)\n    return {'v': n * 2}\n"
    monkeypatch.setattr("builtins._calls", calls, raising=False)
    (tmp_path / "src").mkdir()
    m = _module(tmp_path / "src", monkeypatch, src, "unitmod_d")
    root = tmp_path / "runs"
    assert _quiet(root).cached(m.work, n=2) == {"v": 4}
    assert _quiet(root).cached(m.work, n=2) == {"v": 4} and calls == [2]  # reused
    rec = json.loads(next(root.glob("work-*/result.json")).read_text())
    assert rec["key"].startswith("work-") and "commit" in rec and rec["settings"] == {"n": 2}

    m2 = _module(tmp_path / "src", monkeypatch, src.replace("n * 2", "n * 3"), "unitmod_d")
    kept = _quiet(root, reuse="any-code")
    assert kept.cached(m2.work, n=2) == {"v": 4} and calls == [2]  # an old-code unit kept on purpose
    assert kept.summary()["reused_other_code"] == ["work"]
    assert _quiet(root).cached(m2.work, n=2) == {"v": 6} and calls == [2, 2]  # the code changed: recomputed
    assert len(list(root.glob("work-*/"))) == 1  # and the old-code unit replaced


def test_find_gives_the_unit_of_the_same_call(tmp_path):
    r = _quiet(tmp_path)

    def keep(n):
        runs.current().save_arrays(w=np.arange(n))
        return n

    assert r.find(keep, n=3) is None
    r.cached(keep, n=3)
    assert r.find(keep, n=3).load_arrays()["w"].tolist() == [0, 1, 2]
    assert r.find(keep, n=4) is None


def test_a_damaged_or_foreign_record_is_recomputed_with_a_warning(tmp_path):
    r = _quiet(tmp_path)
    calls = []

    def work(n):
        calls.append(n)
        return n

    r.cached(work, n=1)
    rec_path = next(tmp_path.glob("*/result.json"))
    rec_path.write_text(rec_path.read_text()[:40])  # truncated by a kill
    with pytest.warns(DamagedRecord, match=str(rec_path)):
        assert _quiet(tmp_path).cached(work, n=1) == 1
    rec = json.loads(rec_path.read_text())
    rec["key"] = "another-key"
    rec_path.write_text(json.dumps(rec))
    with pytest.warns(DamagedRecord, match="does not belong"):
        _quiet(tmp_path).cached(work, n=1)
    assert calls == [1, 1, 1]
