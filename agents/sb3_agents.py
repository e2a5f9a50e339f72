"""PPO, A2C and their LSTM variants (stable-baselines3, sb3-contrib) behind the common agent interface.

Defaults are chosen for a CPU-only 2-core machine (see ``docs/results.md``): 8 envs on 2 cores keep both
cores busy while the policy runs; PPO takes big minibatches (256) and few epochs (4), so an update costs
seconds, not minutes, on a CPU; torch uses one thread while the envs step and every core while it trains.
On a CUDA machine ``device: auto`` puts the networks on the GPU.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import Field, model_validator
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.logger import KVWriter, Logger
from stable_baselines3.common.sb2_compat.rmsprop_tf_like import RMSpropTFLike

from agents import legacy, safe_io
from agents.base import AgentError, ScheduleLike, read_agent_file, write_agent_file
from agents.networks import ChannelsLastNatureCNN
from agents.sb3_format import (
    MAX_MLP_INPUTS,
    MAX_SPACE_VALUES,
    MODEL_FILE,
    MODEL_FORMAT,
    OPTIMIZER_FILE,
    POLICY_FILE,
    read_counters,
    read_optimizer,
    read_policy,
    space_from_json,
    space_to_json,
    write_model,
)
from wrappers.factory import make_vec_env
from wrappers.settings import EnvSpec, StrictModel
from wrappers.vec_env import EnvWorkerError, cores


class PPOHyperparams(StrictModel):
    """PPO's settings (SB3 names). Defaults: tuned for SMB on 2 CPU cores, see docs/results.md."""

    learning_rate: ScheduleLike = Field(default={"schedule": "linear", "start": 2.5e-4, "end": 0.0},
                                        description="Adam step size: a number or a schedule.")
    n_steps: int = Field(default=128, ge=1, description="Steps per env per rollout.")
    batch_size: int = Field(default=256, ge=2, description="Minibatch size (of n_steps * n_envs samples).")
    n_epochs: int = Field(default=4, ge=1, description="Passes over each rollout.")
    gamma: float = Field(default=0.99, gt=0.0, le=1.0, description="Discount factor.")
    gae_lambda: float = Field(default=0.95, ge=0.0, le=1.0, description="GAE lambda.")
    clip_range: ScheduleLike = Field(default=0.1, description="Policy ratio clip: a number or a schedule.")
    clip_range_vf: float | None = Field(default=None, gt=0, description="Value clip (None: no clipping).")
    normalize_advantage: bool = True
    ent_coef: float = Field(default=0.01, ge=0.0, description="Entropy bonus weight.")
    vf_coef: float = Field(default=0.5, ge=0.0, description="Value loss weight.")
    max_grad_norm: float = Field(default=0.5, gt=0.0, description="Gradient norm clip.")
    target_kl: float | None = Field(default=None, gt=0, description="Stop an update's epochs past this KL.")
    policy_kwargs: dict[str, Any] = Field(default_factory=dict, description="Passed to the SB3 policy.")

    def to_sb3(self) -> dict:
        """Keyword arguments for the SB3 constructor."""
        kw = self.model_dump()
        kw["learning_rate"] = self.learning_rate.to_sb3()
        kw["clip_range"] = self.clip_range.to_sb3()
        return kw


class A2CHyperparams(StrictModel):
    """A2C's settings (SB3 names and defaults, but for an entropy bonus that helps exploration)."""

    learning_rate: ScheduleLike = Field(default=7e-4, description="RMSprop step size: number or schedule.")
    n_steps: int = Field(default=5, ge=1, description="Steps per env per update.")
    gamma: float = Field(default=0.99, gt=0.0, le=1.0)
    gae_lambda: float = Field(default=1.0, ge=0.0, le=1.0)
    ent_coef: float = Field(default=0.01, ge=0.0)
    vf_coef: float = Field(default=0.5, ge=0.0)
    max_grad_norm: float = Field(default=0.5, gt=0.0)
    rms_prop_eps: float = Field(default=1e-5, gt=0.0)
    use_rms_prop: bool = True
    rms_prop_tf_like: bool = Field(
        default=False, description="RMSprop as TensorFlow computes it, eps inside the square root (SB3's "
        "RMSpropTFLike, what rl-zoo's Atari A2C uses): torch's own takes near-full steps on tiny gradients.")
    normalize_advantage: bool = False
    policy_kwargs: dict[str, Any] = Field(default_factory=dict)

    #: Settings that are not SB3 arguments themselves: each becomes part of the named argument.
    TRANSLATED: ClassVar[dict[str, str]] = {"rms_prop_tf_like": "policy_kwargs"}

    @model_validator(mode="after")
    def _tf_like_is_rmsprop(self):
        if self.rms_prop_tf_like and not self.use_rms_prop:
            raise ValueError("rms_prop_tf_like is a kind of RMSprop: it needs use_rms_prop: true")
        return self

    def to_sb3(self) -> dict:
        """Keyword arguments for the SB3 constructor."""
        kw = self.model_dump()
        kw["learning_rate"] = self.learning_rate.to_sb3()
        # torch's RMSprop divides by sqrt(v) + eps, TensorFlow's by sqrt(v + eps): with eps 1e-5, a weight whose
        # gradients are ~1e-6 moves ~0.1 lr a step in torch and ~3e-4 lr in TensorFlow
        if kw.pop("rms_prop_tf_like") and "optimizer_class" not in self.policy_kwargs:
            kw["policy_kwargs"] = {"optimizer_class": RMSpropTFLike,
                                   "optimizer_kwargs": {"alpha": 0.99, "eps": self.rms_prop_eps, "weight_decay": 0},
                                   **self.policy_kwargs}
        return kw


class _SB3Spec(StrictModel):
    policy: Literal["cnn", "mlp", "multi"] = Field(
        default="cnn", description="cnn for pixels, mlp for the tile grid or RAM variables, multi for pixels+ram.")
    n_envs: int = Field(default=8, ge=1, le=256, description="Parallel envs (one emulator process each).")
    device: str = Field(default="auto", description="auto (CUDA when present), cpu or cuda.")
    torch_threads: int | None = Field(default=None, ge=1, description="Threads for updates (default: cores).")


class PPOSpec(_SB3Spec):
    """``agent:`` section for PPO (SB3 ``PPO``, ``CnnPolicy``)."""

    algo: Literal["ppo"]
    hyperparams: PPOHyperparams = Field(default_factory=PPOHyperparams)


class PPOLSTMSpec(_SB3Spec):
    """``agent:`` section for PPO with an LSTM policy (sb3-contrib ``RecurrentPPO``, ``CnnLstmPolicy``)."""

    algo: Literal["ppo_lstm"]
    hyperparams: PPOHyperparams = Field(default_factory=PPOHyperparams)


class A2CSpec(_SB3Spec):
    """``agent:`` section for A2C (SB3 ``A2C``, ``CnnPolicy``)."""

    algo: Literal["a2c"]
    hyperparams: A2CHyperparams = Field(default_factory=A2CHyperparams)


class A2CLSTMSpec(_SB3Spec):
    """``agent:`` section for A2C with an LSTM policy (:class:`agents.recurrent_a2c.RecurrentA2C`)."""

    algo: Literal["a2c_lstm"]
    hyperparams: A2CHyperparams = Field(default_factory=A2CHyperparams)


def cnn_policy_kwargs(user: dict) -> dict:
    """Policy kwargs for pixel policies: the channels-last Nature CNN, with SB3's NatureCNN heads.

    SB3 gives any features extractor other than ``NatureCNN`` itself two 64-unit tanh layers per head
    (``net_arch`` defaults to ``[]`` only for NatureCNN), so the drop-in must say ``net_arch=[]`` to keep
    the architecture of ``CnnPolicy``. User settings win.
    """
    out = {"features_extractor_class": ChannelsLastNatureCNN}
    if "features_extractor_class" not in user:
        out["net_arch"] = []
    return {**out, **user}


#: Hidden-layer activations a saved multi-input policy may name in model.json (older files name none: tanh).
ACTIVATIONS = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh}


def multi_policy_kwargs(user: dict, activation: str = "relu") -> dict:
    """Policy kwargs for pixels beside RAM (``MultiInputPolicy``): ReLU hidden layers, not SB3's tanh.

    SB3 puts two 64-unit tanh layers per head on the concatenated features, and the Nature CNN's ReLU
    features are unbounded: in boxing_ppo_pixram at lr 1e-3 they grew to ~80 within the first updates,
    62% of the value head's tanh units sat at +-1 and the value was one constant for every observation
    (explained variance 0 from the second update to 2M frames; the run learned nothing). User settings
    win.
    """
    return {"activation_fn": ACTIVATIONS[activation], **user}


class SB3Agent:
    """An SB3 model behind the agent interface. Subclasses name the algorithm and its model class."""

    algo = ""
    Spec: type[_SB3Spec] = _SB3Spec
    recurrent = False

    def __init__(self, spec: _SB3Spec, env_spec: EnvSpec, seed: int, model=None):
        self.spec = spec
        self.env_spec = env_spec
        self.seed = seed
        self.model = model

    # ------------------------------------------------------------------ subclass hooks

    @staticmethod
    def model_class():
        """The SB3 algorithm class."""
        raise NotImplementedError

    #: The env observation each policy reads (the spec check refuses other pairs before a run starts).
    POLICY_OBS = {"cnn": ("pixels",), "mlp": ("tiles", "ram"), "multi": ("pixels+ram",)}

    def policy_name(self) -> str:
        """SB3 policy name for the spec's ``policy``."""
        base = {"cnn": "Cnn", "mlp": "Mlp", "multi": "MultiInput"}[self.spec.policy]
        return f"{base}LstmPolicy" if self.recurrent else f"{base}Policy"

    @classmethod
    def problems(cls, spec: _SB3Spec, env=None) -> list[tuple[str, str]]:
        """A policy that cannot read the env's observation (cnn on RAM values, mlp on pixels)."""
        if env is not None and env.obs not in cls.POLICY_OBS[spec.policy]:
            fit = next(p for p, kinds in cls.POLICY_OBS.items() if env.obs in kinds)
            return [("policy", f"{spec.policy} does not read env.obs: {env.obs}; use policy: {fit}")]
        return []

    # ------------------------------------------------------------------ learning

    def _new_model(self, venv, setup: bool = True, device: str | None = None, activation: str = "relu"):
        kw = self.spec.hyperparams.to_sb3()
        if self.spec.policy == "cnn":
            kw["policy_kwargs"] = cnn_policy_kwargs(kw["policy_kwargs"])
        elif self.spec.policy == "multi":
            kw["policy_kwargs"] = multi_policy_kwargs(kw["policy_kwargs"], activation)
        return self.model_class()(self.policy_name(), venv, seed=self.seed, device=device or self.spec.device,
                                  verbose=0, _init_setup_model=setup, **kw)

    def learn(self, budget_frames: int, run) -> None:
        """Train to ``budget_frames`` emulator frames, resuming from the run's latest checkpoint.

        If an env worker dies or raises, the model (whole: the update in progress is not applied until
        its rollout is complete) is checkpointed before the error goes up, so ``--resume`` loses only the
        unfinished rollout.
        """
        skip = self.env_spec.frame_skip
        ckpt = run.latest_checkpoint()
        # Fresh env seeds on every resume, so a resumed run does not replay the same sticky-action draws.
        venv = make_vec_env(self.env_spec, self.spec.n_envs, seed=self.seed * 1000 + 100 * run.resumes)
        # The frames axis counts what the emulators played (move macros and a fight's pauses included),
        # not agent steps x frame skip.
        self._frames_base, self._venv = run.start_frames, venv
        run.attach_envs(venv)  # a curriculum moves the envs' start-state pool from here on
        try:
            if ckpt is not None:
                trust = getattr(run, "trust_pickles", False)
                self.model = self._load_model(ckpt, venv, trust)
                _restore_rng(ckpt, trust)
            else:
                self.model = self._new_model(venv)
            self.model.set_logger(Logger(folder=None, output_formats=[_RunOutput(run, self)]))
            run.hyperparameters(self._hparams_table())
            callback = _RunCallback(self, run, budget_frames)
            cb = CallbackList([TorchThreads(self.spec.torch_threads or cores()), callback])
            # SB3 counts agent steps: ask for the steps the frames left need at the frame skip; a set whose
            # actions play more frames (macros) reaches the frame budget first, and the callback stops there.
            while self.frames() < budget_frames and not callback.over:
                steps = max(1, -(-(budget_frames - self.frames()) // skip))
                try:
                    self.model.learn(total_timesteps=steps, callback=cb, reset_num_timesteps=False,
                                     log_interval=1, progress_bar=False)
                except EnvWorkerError:
                    run.checkpoint(self.frames(), self)
                    raise
            torch.set_num_threads(self.spec.torch_threads or cores())
            run.finish(self.frames(), self)
        finally:
            venv.close()
            self._venv = None

    def frames(self) -> int:
        """Emulator frames learned from so far (in this run, resumes included)."""
        return self._frames_base + (self._venv.frames if self._venv is not None else 0)

    def _load_model(self, path: Path, venv, trust_pickles: bool = False):
        """The model of the checkpoint ``path``, on ``venv``, with its optimizer and counters."""
        fix = "To resume from the checkpoint before it, delete that folder."
        if not (path / POLICY_FILE).is_file() and (path / "model.zip").is_file():
            return legacy.sb3_model(self.model_class(), path / "model.zip", trust_pickles, env=venv,
                                    device=self.spec.device)
        try:
            return self._read_model(path, venv, self.spec.device, training=True)
        except AgentError as e:
            raise AgentError(f"checkpoint {path} is unreadable: {e} {fix}") from None

    def write_checkpoint(self, folder: Path) -> None:
        """Policy, optimizer and counters (``save(optimizer=True)``), plus the RNG states, into ``folder``."""
        self.save(folder, optimizer=True)
        safe_io.save_rng(folder)

    def _hparams_table(self) -> dict:
        return {"algo": self.algo, "policy": self.policy_name(), "n_envs": self.spec.n_envs,
                **{k: (v.model_dump() if hasattr(v, "model_dump") else v)
                   for k, v in self.spec.hyperparams}}

    # ------------------------------------------------------------------ saving and playing

    def save(self, path: Path, optimizer: bool = False, half: bool = False) -> None:
        """Write the policy (``policy.safetensors``), ``model.json`` (spaces, counters) and ``agent.json``
        into ``path``; ``optimizer`` adds ``optimizer.safetensors`` (what resuming needs), ``half`` stores the
        weights in float16 (half the size; they play as float32 again)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        write_model(self.model, path, self.algo, self.policy_name(), optimizer=optimizer, half=half)
        write_agent_file(path, self.algo, format=safe_io.FORMAT_VERSION, seed=self.seed,
                         spec=self.spec.model_dump(mode="json"), env_spec=self.env_spec.model_dump(mode="json"))

    @classmethod
    def load(cls, path: Path, device: str = "auto", trust_pickles: bool = False) -> SB3Agent:
        """Load a saved agent for playing (no env attached); an earlier version's model.zip only with
        ``trust_pickles``."""
        path = Path(path)
        meta = read_agent_file(path)
        spec = cls.Spec.model_validate(meta["spec"])
        seed = meta.get("seed", 0)
        env_spec = EnvSpec.model_validate(meta["env_spec"]).model_copy(update={"record_dir": None,
                                                                                 "render_mode": None})
        agent = cls(spec, env_spec, seed if safe_io.is_int(seed) else 0)
        if not (path / POLICY_FILE).is_file() and (path / "model.zip").is_file():
            agent.model = legacy.sb3_model(cls.model_class(), path / "model.zip", trust_pickles, device=device)
        else:
            agent.model = agent._read_model(path, None, device, training=False)
        return agent

    def _read_model(self, path: Path, venv, device: str, training: bool):
        """Build the model from this agent's spec (no byte of the folder is unpickled) and fill it from the
        safe files: spaces and schedules come from the spec and model.json's data, weights from
        safetensors."""
        model_path = path / MODEL_FILE
        doc = safe_io.check_version(safe_io.read_json(model_path, "saved model description"), model_path,
                                    MODEL_FORMAT)
        top = safe_io.Fields(doc, model_path)
        if top.str("algo") != self.algo or top.str("policy") != self.policy_name():
            top.fail("algo", f"does not match agent.json ({self.algo}, {self.policy_name()})")
        # the network is built before the weights are read: a described input must fit the policy kind, or a
        # crafted model.json could have an MLP of billions of weights allocated
        obs_space = space_from_json(top.get("observation_space", lambda v: True, ""), model_path,
                                    "observation_space",
                                    max_values=MAX_MLP_INPUTS if self.spec.policy == "mlp" else MAX_SPACE_VALUES)
        act_space = space_from_json(top.get("action_space", lambda v: True, ""), model_path, "action_space")
        activation = "relu"
        if self.spec.policy == "multi":
            activation = top.get("activation", lambda v: isinstance(v, str) and v in ACTIVATIONS,
                                 f"one of {', '.join(ACTIVATIONS)}", optional=True) or "tanh"
        model = self._new_model(venv, setup=False, device=device, activation=activation)
        if venv is None:
            model.observation_space, model.action_space = obs_space, act_space
            model.n_envs = top.int("n_envs", lo=1)
        elif space_to_json(model.observation_space) != doc["observation_space"] or \
                space_to_json(model.action_space) != doc["action_space"]:
            raise AgentError(f"{model_path} describes observations or actions other than the env's: the "
                             "checkpoint belongs to another game set-up.")
        try:
            model._setup_model()
        except Exception as e:  # a space SB3's policies cannot read
            raise AgentError(f"{model_path}: SB3 cannot build a {self.policy_name()} for these spaces "
                             f"({type(e).__name__}: {e}).") from None
        read_policy(model.policy, path / POLICY_FILE)
        if training:
            read_optimizer(model.policy.optimizer, top, path / OPTIMIZER_FILE)
        read_counters(model, top)
        return model

    def policy(self):
        """The SB3 model: it is a ``Policy`` (``predict(obs, state, episode_start, deterministic)``)."""
        return self.model


class PPOAgent(SB3Agent):
    """PPO with SB3's ``CnnPolicy`` (Nature CNN)."""

    algo = "ppo"
    Spec = PPOSpec

    @staticmethod
    def model_class():
        """SB3 ``PPO``."""
        from stable_baselines3 import PPO

        return PPO


class A2CAgent(SB3Agent):
    """A2C with SB3's ``CnnPolicy``."""

    algo = "a2c"
    Spec = A2CSpec

    @staticmethod
    def model_class():
        """SB3 ``A2C``."""
        from stable_baselines3 import A2C

        return A2C


class PPOLSTMAgent(SB3Agent):
    """PPO with an LSTM policy (sb3-contrib ``RecurrentPPO``, ``CnnLstmPolicy``)."""

    algo = "ppo_lstm"
    Spec = PPOLSTMSpec
    recurrent = True

    @staticmethod
    def model_class():
        """sb3-contrib ``RecurrentPPO``."""
        from sb3_contrib import RecurrentPPO

        return RecurrentPPO


class A2CLSTMAgent(SB3Agent):
    """A2C with an LSTM policy: RecurrentPPO with A2C's update (see :mod:`agents.recurrent_a2c`)."""

    algo = "a2c_lstm"
    Spec = A2CLSTMSpec
    recurrent = True

    @staticmethod
    def model_class():
        """:class:`agents.recurrent_a2c.RecurrentA2C`."""
        from agents.recurrent_a2c import RecurrentA2C

        return RecurrentA2C


# --------------------------------------------------------------------------- plumbing into the run


def _restore_rng(folder: Path, trust_pickles: bool = False) -> None:
    """The RNG states of a checkpoint (an earlier version's rng.pkl only with ``trust_pickles``)."""
    try:
        if safe_io.restore_rng(folder):
            return
    except AgentError as e:
        raise AgentError(f"checkpoint {folder} is unreadable: {e} To resume from the checkpoint before it, "
                         "delete that folder.") from None
    if (folder / "rng.pkl").is_file():
        legacy.restore_rng(folder / "rng.pkl", trust_pickles)


class _RunOutput(KVWriter):
    """SB3 logger output into the run's TensorBoard writer, on the emulator-frames axis.

    SB3's ``time/*`` keys count agent steps; the run writes its own ``time/fps`` in frames, so they are
    dropped. Losses (``train/*``) and ``rollout/*`` stay as SB3 names them, but for ``rollout/ep_*`` with a
    curriculum: SB3 averages every episode, those from the curriculum's mid-level states too, which would
    read as a collapse when the pool starts (``train/episode_*`` holds the real start's episodes).
    """

    def __init__(self, run, agent: SB3Agent):
        self.run = run
        self.agent = agent

    def write(self, key_values, key_excluded, step: int = 0) -> None:
        """Forward numeric values at the frames learned from so far."""
        frames = self.agent.frames()
        for key, value in key_values.items():
            excluded = key_excluded.get(key) or ()
            if key.startswith("time/") or "tensorboard" in excluded:
                continue
            if key.startswith("rollout/ep_") and getattr(self.run, "curriculum", None) is not None:
                continue
            if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
                self.run.scalar(key, float(value), frames)

    def close(self) -> None:
        """Nothing to close: the run owns the writer."""


class TorchThreads(BaseCallback):
    """One torch thread while the envs step (more would only contend with them), all of them to train."""

    def __init__(self, train_threads: int):
        super().__init__()
        self.train_threads = train_threads

    def _on_rollout_start(self) -> None:
        torch.set_num_threads(1)

    def _on_rollout_end(self) -> None:
        torch.set_num_threads(self.train_threads)

    def _on_step(self) -> bool:
        return True


class _RunCallback(BaseCallback):
    """Feeds SB3's loop into the run: episodes, evals, checkpoints, progress, stop requests, the frame budget.

    The budget is checked when a rollout ends, so the last rollout is always learned from.
    """

    def __init__(self, agent: SB3Agent, run, budget_frames: int):
        super().__init__()
        self.agent = agent
        self.run = run
        self.budget_frames = budget_frames
        self.over = False  # stopped: by the run (signal, time) or at the frame budget
        self._begun = False

    def _on_training_start(self) -> None:
        if not self._begun:  # learn() may be called again for the last frames
            self._begun = True
            self.run.begin(self.agent.frames(), self.agent)

    def _on_rollout_end(self) -> None:
        if self.agent.frames() >= self.budget_frames:
            self.over = True

    def _on_step(self) -> bool:
        if self.over:
            return False
        frames = self.agent.frames()
        episodes = [i["episode"] for i in self.locals["infos"] if "episode" in i]
        if episodes:
            self.run.record(frames, episodes)
        if not self.run.tick(frames, self.agent):
            self.over = True
        return not self.over
