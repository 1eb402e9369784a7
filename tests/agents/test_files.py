import base64
import io
import json
import os
import zipfile

import cloudpickle
import numpy as np
import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.save_util import load_from_zip_file
from stable_baselines3.common.vec_env import DummyVecEnv

from rlhf_gym.agents.critics import state_value
from rlhf_gym.agents.files import load_agent, read_policy, save_agent
from rlhf_gym.agents.registry import make_agent
from rlhf_gym.algos.anchor import load_parameters
from rlhf_gym.tasks.registry import get_task
from rlhf_gym.train.resolve import resolve_config

HP = {"n_steps": 16, "batch_size": 16, "n_epochs": 1}


class MakeDir:
    """Unpickling this runs ``os.mkdir(path)``: a stand-in for any code a stranger's file could run."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def built(task_name, algo, **hyperparams):
    """An agent of ``algo`` built as a run of ``task_name`` with ``hyperparams`` builds it."""
    task, cfg = get_task(task_name), resolve_config(task=task_name, algo=algo, hyperparams=hyperparams)
    kwargs = {k: v for k, v in cfg.hyperparams.items() if k != "n_envs"}
    return make_agent(algo, DummyVecEnv([task.make]), kwargs, 0, False), task, cfg


def rewritten(src, dst, edit_data=None, entries=None):
    """A copy of the zip ``src`` at ``dst``, its ``data`` JSON changed by ``edit_data`` and the
    entries ``entries`` (name -> bytes) replaced."""
    with zipfile.ZipFile(src) as archive:
        content = {name: archive.read(name) for name in archive.namelist()}
    if edit_data is not None:
        data = json.loads(content["data"])
        edit_data(data)
        content["data"] = json.dumps(data).encode()
    content.update(entries or {})
    with zipfile.ZipFile(dst, "w") as archive:
        for name, raw in content.items():
            archive.writestr(name, raw)
    return dst


def serialized(obj):
    return base64.b64encode(cloudpickle.dumps(obj)).decode()


def test_save_agent_writes_a_pickle_free_twin_that_is_preferred(tmp_path):
    agent, _, _ = built("CartPole-v1", "ppo", **HP)
    path = save_agent(agent, tmp_path / "run" / "agent")  # SB3 appends .zip; so does save_agent
    assert path == tmp_path / "run" / "agent.zip"
    assert sorted(p.name for p in path.parent.iterdir()) == ["agent.json", "agent.safetensors", "agent.zip"]
    meta = json.loads((path.parent / "agent.json").read_text())
    assert meta["algo"] == "ppo" and meta["gamma"] == agent.gamma and meta["format_version"] == 1
    own = agent.policy.state_dict()
    for given in (path, path.parent / "agent.safetensors", path.parent / "agent.json", path.parent / "agent"):
        saved = read_policy(given)
        assert saved.path.name == "agent.safetensors" and saved.algo == "ppo"
        assert all(torch.equal(saved.state[k], own[k]) for k in own)
    (path.parent / "agent.zip").unlink()  # the twin alone is a saved agent
    assert torch.equal(load_parameters(agent, str(path))["action_net.weight"], own["action_net.weight"])


def test_a_twin_left_by_another_save_is_not_taken_for_the_zip(tmp_path):
    first, _, _ = built("CartPole-v1", "ppo", **HP)
    save_agent(first, tmp_path / "agent.zip")
    second = PPO("MlpPolicy", "CartPole-v1", seed=1, device="cpu")
    second.save(tmp_path / "agent.zip")  # SB3's own save: the twin beside it is now stale
    saved = read_policy(tmp_path / "agent.zip")
    assert saved.path.name == "agent.zip"
    assert torch.equal(saved.state["action_net.weight"], second.policy.state_dict()["action_net.weight"])
    save_agent(second, tmp_path / "other.zip")  # a twin whose halves come from different saves is refused
    os.replace(tmp_path / "other.safetensors", tmp_path / "agent.safetensors")
    with pytest.raises(ValueError, match=r"agent.safetensors' does not match .*agent.json"):
        read_policy(tmp_path / "agent.safetensors")


@pytest.mark.parametrize("where", ["extra entry", "policy_class"])
def test_a_malicious_zip_never_runs_code_on_any_loading_path(tmp_path, where):
    agent, task, cfg = built("CartPole-v1", "ppo", **HP)
    agent.save(tmp_path / "clean.zip")
    marker = tmp_path / "pwned"

    def poison(data):
        if where == "extra entry":
            data["hook"] = {
                ":type:": "<class 'builtins.object'>",
                ":serialized:": serialized(MakeDir(marker)),
            }
        else:
            data["policy_class"][":serialized:"] = serialized(MakeDir(marker))

    evil = rewritten(tmp_path / "clean.zip", tmp_path / "agent.zip", poison)
    # what rlhf-gym did before: SB3's loader runs the payload (so this test can fail)
    load_from_zip_file(str(evil), device="cpu")
    assert marker.is_dir()
    marker.rmdir()

    state = load_parameters(agent, str(evil))  # init_policy (train, warp)
    assert torch.equal(state["action_net.weight"], agent.policy.state_dict()["action_net.weight"])
    critic = load_agent(evil, task, cfg)  # teacher_critic
    obs = np.zeros((2, 4), np.float32)
    assert np.allclose(state_value(critic)(obs), state_value(agent)(obs))
    read_policy(tmp_path / "agent")  # the path without .zip
    assert not marker.exists()


def test_a_policy_pth_holding_a_pickled_object_is_refused_without_running_it(tmp_path):
    agent, task, cfg = built("CartPole-v1", "ppo", **HP)
    agent.save(tmp_path / "clean.zip")
    marker = tmp_path / "pwned"
    path = tmp_path / "agent.zip"
    buffer = io.BytesIO()
    torch.save({"action_net.weight": MakeDir(marker)}, buffer)
    rewritten(tmp_path / "clean.zip", path, entries={"policy.pth": buffer.getvalue()})
    for load in (lambda: load_parameters(agent, str(path)), lambda: load_agent(path, task, cfg)):
        with pytest.raises(ValueError, match=r"the policy.pth of '.*agent.zip' is not a plain state dict"):
            load()
    assert not marker.exists()


def test_files_that_are_not_a_fitting_agent_get_one_clear_line(tmp_path):
    agent, task, cfg = built("CartPole-v1", "ppo", **HP)
    agent.save(tmp_path / "clean.zip")
    (tmp_path / "text.zip").write_text("not a zip")
    (tmp_path / "dir").mkdir()
    with zipfile.ZipFile(tmp_path / "empty.zip", "w") as archive:
        archive.writestr("data", "{}")
    nan = {k: v.clone() for k, v in agent.policy.state_dict().items()}
    nan["action_net.bias"][0] = float("nan")
    buffer = io.BytesIO()
    torch.save(nan, buffer)
    rewritten(tmp_path / "clean.zip", tmp_path / "nan.zip", entries={"policy.pth": buffer.getvalue()})
    PPO("MlpPolicy", "Pendulum-v1", device="cpu").save(tmp_path / "pendulum.zip")
    cases = {
        "missing": (FileNotFoundError, r"no saved agent at '.*missing' or '.*missing.zip'; expected an SB3"),
        "missing.zip": (FileNotFoundError, r"no saved agent at '.*missing.zip'; expected an SB3 agent zip"),
        "dir": (ValueError, r"saved agent '.*dir' is a directory; expected an SB3 agent zip"),
        "text.zip": (ValueError, r"saved agent '.*text.zip' is not a zip file"),
        "empty.zip": (ValueError, r"saved agent '.*empty.zip' holds no policy.pth; expected an SB3"),
        "nan.zip": (ValueError, r"saved agent '.*nan.zip' has NaN or inf in action_net.bias"),
        "pendulum.zip": (
            ValueError,
            r"init_policy '.*pendulum.zip' does not fit this task and algorithm: mlp_extractor.policy_net.0"
            r".weight is \(64, 3\) where \(64, 4\) was expected.*; expected an agent saved for the same task",
        ),
    }
    for name, (error, message) in cases.items():
        with pytest.raises(error, match=message) as caught:
            load_parameters(agent, str(tmp_path / name))
        assert "\n" not in str(caught.value)
    assert load_parameters(agent, str(tmp_path / "clean"))  # `--init-policy x` reads x.zip, not x.zip.zip
    with pytest.raises(ValueError, match=r"pendulum.zip' does not fit task CartPole-v1") as caught:
        load_agent(tmp_path / "pendulum.zip", task, cfg)  # a Box-action policy: no CartPole agent fits
    assert "matches none of ppo, a2c, dqn" in str(caught.value) and "\n" not in str(caught.value)


def test_load_agent_rebuilds_each_kind_of_critic_with_its_saved_discount(tmp_path):
    for task_name, algo in (("CartPole-v1", "dqn"), ("Pendulum-v1", "sac"), ("CartPole-v1", "ppo")):
        agent, task, _ = built(task_name, algo)
        agent.gamma = 0.9
        run = resolve_config(
            task=task_name, hyperparams=HP if task.algo == "ppo" else {}
        )  # the preset's algo
        obs = np.stack([task.make().reset(seed=k)[0] for k in range(3)])
        for twin in (False, True):
            path = tmp_path / f"{algo}-{twin}.zip"
            save_agent(agent, path) if twin else agent.save(path)
            state = np.random.get_state()  # noqa: NPY002  (SB3 seeds the global stream)
            critic = load_agent(path, task, run)
            assert type(critic) is type(agent) and critic.gamma == 0.9
            assert np.allclose(state_value(critic)(obs), state_value(agent)(obs), atol=1e-6)
            assert np.array_equal(np.random.get_state()[1], state[1])  # noqa: NPY002  # the run's random stream is kept


def test_a_run_started_from_a_malicious_zip_runs_no_code(tmp_path):
    from rlhf_gym.train.rlhf import RLHF

    agent, _, _ = built("CartPole-v1", "ppo", **HP)
    agent.save(tmp_path / "clean.zip")
    marker = tmp_path / "pwned"
    payload = {":type:": "<class 'builtins.object'>", ":serialized:": serialized(MakeDir(marker))}
    evil = rewritten(tmp_path / "clean.zip", tmp_path / "agent.zip", lambda data: data.update(hook=payload))
    tiny = dict(labels=2, total_timesteps=64, segment_length=5, feedback_rounds=1, eval_freq=10_000)
    run = RLHF(
        "CartPole-v1", horizon="fixed", init_policy=str(evil), final_eval_episodes=1, hyperparams=HP, **tiny
    )
    run.learn()
    assert run.reference is not None and not marker.exists()
    for name, p in run.reference.state_dict().items():
        torch.testing.assert_close(p, agent.policy.state_dict()[name])
