import pytest

from rlhf_gym.config import RewardModelConfig, RunConfig
from rlhf_gym.schema import field_docs, from_dict, load_yaml, merge


def test_every_field_has_a_docstring():
    for cls in (RunConfig, RewardModelConfig):
        docs = field_docs(cls)
        missing = [f for f in cls.__dataclass_fields__ if not docs.get(f)]
        assert not missing, f"{cls.__name__} fields without a docstring: {missing}"


def test_unknown_key_is_named():
    with pytest.raises(ValueError, match="unknown key 'lables'"):
        from_dict(RunConfig, {"lables": 5})
    with pytest.raises(ValueError, match=r"unknown key 'width' in config.reward_model"):
        from_dict(RunConfig, {"reward_model": {"width": 5}})


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"labels": -1}, "labels must be non-negative"),
        ({"kl_coef": float("nan")}, "kl_coef must be a finite number, got nan"),
        ({"budget_seconds": 1e8}, "budget_seconds must be at most 1000000"),
        ({"feedback_rounds": 10**9}, "feedback_rounds must be at most 1000"),
        ({"seed": 10**23}, "seed must be at most 4294967295"),
        ({"candidate_factor": 10**9}, "candidate_factor must be at most 1000"),
        ({"hyperparams": {"n_steps": 10**12}}, r"hyperparams.n_steps must be an integer in \[1, 10000000\]"),
        ({"hyperparams": {"n_envs": 10**8}}, r"hyperparams.n_envs must be an integer in \[1, 256\]"),
        ({"reward_model": {"hidden_sizes": [10**9]}}, "hidden_sizes must be 1 to 8 widths"),
        ({"total_timesteps": 10**11}, "total_timesteps must be at most"),
        ({"reward_model": {"weight_decay": float("nan")}}, "weight_decay must be a finite number"),
        ({"effort": {"decide_seconds": float("inf")}}, "effort.decide_seconds must be a finite number"),
        ({"horizon": "long"}, "unknown horizon 'long'"),
        ({"reward": "fake"}, "unknown reward 'fake'"),
        ({"feedback_until": 1.5}, "feedback_until must be in"),
        ({"labels": "many"}, "config.labels must be int"),
        ({"teacher": "sage"}, "unknown teacher 'sage'"),
        ({"teacher_params": {"bta": 1.0}}, "unknown teacher parameter 'bta'"),
        ({"teacher_critic": "agent.zip"}, "teacher_critic is used only by teacher 'regret'"),
        ({"teacher": "regret", "feedback": "ratings"}, "answers comparisons only"),
        ({"teacher": "regret", "teacher_params": {"gamma": 0.9}}, "expected no teacher gamma"),
        ({"hyperparams": "abc"}, "config.hyperparams must be a mapping"),
        ({"reward_model": {"hidden_sizes": ["a"]}}, r"reward_model.hidden_sizes\[0\] must be int"),
        ({"reward_model": {"noise_robust": 1.0}}, "noise_robust must be in"),
    ],
)
def test_bad_values_are_rejected_by_name(bad, message):
    with pytest.raises((ValueError, TypeError), match=message):
        from_dict(RunConfig, bad)


def test_merge_is_nested():
    cfg = merge(RunConfig(), {"reward_model": {"n_steps": 7}, "hyperparams": {"n_steps": 8}})
    assert cfg.reward_model.n_steps == 7 and cfg.reward_model.ensemble_size == 3
    assert cfg.hyperparams == {"n_steps": 8}


def test_yaml_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_yaml(tmp_path / "none.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match="mapping"):
        load_yaml(tmp_path / "list.yaml")
    (tmp_path / "broken.yaml").write_text("a: [1,\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_yaml(tmp_path / "broken.yaml")


def test_warp_config_rejects_a_nan_kl_coef():
    from rlhf_gym.config import WarpConfig

    with pytest.raises(ValueError, match="kl_coef must be non-negative"):
        WarpConfig(kl_coef=float("nan"))
