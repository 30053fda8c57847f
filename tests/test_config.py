import pytest
from imgclf import config

NB = "01_two_stage_autoencoder"


def test_none_takes_the_profile_value_and_overrides_win():
    p = config.resolve(NB, "smoke", 3, ae_epochs=None, mnist_train=123)
    assert p.ae_epochs == config.paper_module(NB).config.PROFILES["smoke"]["ae_epochs"]
    assert p.mnist_train == 123 and p.seed == 3 and p.profile == "smoke"


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(profile="huge"), "profile"),
        (dict(ae_epochs=0), "ae_epochs"),
        (dict(ae_epochs="ten"), "ae_epochs"),
        (dict(ae_learning_rate=-1.0), "ae_learning_rate"),
        (dict(noise_levels=[]), "noise_levels"),
        (dict(dnn_grid=[[300, "x"]]), "dnn_grid[0][1]"),
        (dict(no_such_setting=1), "no_such_setting"),
        (dict(seed=-1), "seed"),
    ],
)
def test_bad_parameter_is_named(kwargs, name):
    kwargs = {"profile": "smoke", "seed": 0, **kwargs}
    with pytest.raises(config.ParameterError, match=f"'{__import__('re').escape(name)}'"):
        config.resolve(NB, **kwargs)


def test_data_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("IMGCLF_DATA", str(tmp_path / "env"))
    assert config.data_dir() == tmp_path / "env"
    assert config.data_dir(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv("IMGCLF_DATA")
    assert config.data_dir() == config.REPO_ROOT / "data"
