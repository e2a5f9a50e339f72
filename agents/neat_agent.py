"""NEAT (neat-python 2.0) behind the common agent interface.

What makes it fast and safe, against the original tutorial (165 s per generation of 30 genomes, all
training lost to an extinction):
- genomes are played by persistent workers, one emulator each, made once per run, not per genome: local
  processes, or Ray actors across machines (``agent.backend``, :mod:`agents.neat_backends`);
- each genome's network is compiled to numpy arrays (:mod:`agents.neat_network`) and acts once per
  frame-skip window on the shared wrapper stack (pixels at 1/8 size, or SMB's tile grid);
- episodes end early (a life lost, or no new maximum of progress for ``env.stuck_frames``);
- every generation is checkpointed atomically with everything resume needs: population, species,
  innovation tracker, genome/node/species counters, best genome, RNG states, frames, generation;
- extinction or a neat-python configuration conflict ends the run with its checkpoint and champion saved.

Fitness is the episode's shaped return from the game profile (its mean over ``episodes_per_genome``, or
over one episode per ``episode_seeds`` seed: the same sticky-action and no-op draws for every genome).
The TensorBoard step is emulator frames, as for PPO and A2C, and the champion is judged on the same
evaluation protocol, so the curves overlay.
"""

from __future__ import annotations

import random
import time
from contextlib import contextmanager
from itertools import count
from pathlib import Path
from typing import Literal

import neat
import numpy as np
from pydantic import Field, model_validator

from agents import legacy, neat_state, safe_io
from agents.base import AgentError, read_agent_file, write_agent_file
from agents.neat_backends import Backend, NoRoomForWorkers, WorkerSetup, WorkerSetupError, make_backend
from agents.neat_config import load_neat_config
from agents.neat_play import Actor
from wrappers.factory import make_env
from wrappers.retro_game import is_added_state as is_curriculum_state
from wrappers.settings import EnvSpec, StrictModel
from wrappers.vec_env import cores


class NEATSpec(StrictModel):
    """``agent:`` section for NEAT."""

    algo: Literal["neat"]
    config: str = Field(default="smb", description="neat-python config: configs/neat/<name>.cfg or a path.")
    workers: int | None = Field(default=None, ge=1, description="Evaluation processes (default: cores).")
    episodes_per_genome: int = Field(default=1, ge=1, description="Episodes averaged into a genome's fitness.")
    episode_seeds: list[int] | None = Field(
        default=None, min_length=1, max_length=64,
        description="Env seeds of a genome's episodes, the same for every genome of every generation (one "
                    "episode each, in place of episodes_per_genome): with sticky actions or no-op starts in "
                    "training, fitness is then a genome's return under that noise, a fact about it, not a draw "
                    "(with a pool of start states, a seed also fixes its episode's state).")
    input_scale: float | None = Field(default=None, gt=0, description="Input multiplier (default 1/255 for "
                                                                        "pixels, 1 for tiles).")
    stop_on_success: bool = Field(default=True, description="End the run when a genome reaches the goal.")
    pop_size: int | None = Field(default=None, ge=2, description="Overrides the config file's pop_size.")
    target_species: int | None = Field(
        default=None, ge=1, description="Steer compatibility_threshold each generation (3% steps) towards "
                                        "this many species (+-2); None keeps the config's fixed threshold.")
    last_action: bool = Field(
        default=False, description="Feed the previous action back as extra inputs (one-hot, or the pressed "
                                   "buttons): a feed-forward network can then alternate on a still picture.")
    record_champions: bool = Field(
        default=False, description="Write each new champion's episode as a .bk2 movie (eval/bk2/champion-*.bk2).")
    backend: Literal["local", "ray"] = Field(
        default="local", description="Where genomes are played: local processes, or Ray actors (pip install "
                                     "'retrodojo[ray]'), which may sit on other machines.")
    ray_address: str | None = Field(
        default="auto", description="Ray cluster to join: auto (the one on this machine, else start a local "
                                    "one), local (always a new local one), or an address such as 10.0.0.5:6379.")
    ray_resources: dict[str, float] = Field(
        default_factory=dict, description="Custom Ray resources each worker needs, e.g. {roms: 1} to keep "
                                          "workers on the nodes you gave that resource (the ones with the ROMs).")

    @model_validator(mode="after")
    def _seeds_agree(self):
        if self.episode_seeds and self.episodes_per_genome not in (1, len(self.episode_seeds)):
            raise ValueError(f"episode_seeds gives {len(self.episode_seeds)} episodes a genome and "
                             f"episodes_per_genome {self.episodes_per_genome}: give one of the two")
        return self


# --------------------------------------------------------------------------- playing a genome


class NEATPolicy:
    """A genome's network as a :class:`agents.base.Policy`: one :class:`Actor` per env in the batch."""

    def __init__(self, genome, config: neat.Config, discrete: bool, input_scale: float, last_action: bool = False):
        self.genome = genome
        self.config = config
        self.args = (discrete, input_scale, last_action)
        self._actors: list[Actor] = []

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        """Actions for a batch of observations; actors reset where an episode starts."""
        obs = np.asarray(observation)
        while len(self._actors) < len(obs):
            self._actors.append(Actor(self.genome, self.config, *self.args))
        actions = []
        for i, o in enumerate(obs):
            if episode_start is not None and episode_start[i]:
                self._actors[i].reset()
            actions.append(self._actors[i](o))
        return np.asarray(actions), None


# --------------------------------------------------------------------------- reporting


class TensorBoardReporter(neat.reporting.BaseReporter):
    """neat-python reporter writing ``neat/*`` scalars into the run, at the agent's frame count."""

    def __init__(self, agent: NEATAgent, run):
        self.agent = agent
        self.run = run
        self._t0 = time.perf_counter()

    def start_generation(self, generation):
        """Start the generation's clock."""
        self._t0 = time.perf_counter()

    def post_evaluate(self, config, population, species, best_genome):
        """Fitness, species and champion size of the generation just evaluated."""
        frames = self.agent.frames
        fits = [g.fitness for g in population.values() if g.fitness is not None]
        nodes, conns = best_genome.size()
        scalars = {
            "neat/best_fitness": max(fits), "neat/mean_fitness": float(np.mean(fits)),
            "neat/best_progress": self.agent.generation_progress,
            "neat/species": len(species.species), "neat/champion_nodes": nodes, "neat/champion_connections": conns,
            "neat/generation": self.agent.population.generation,
            "neat/evaluation_seconds": time.perf_counter() - self._t0,
        }
        for tag, value in scalars.items():
            self.run.scalar(tag, float(value), frames)

    def complete_extinction(self):
        """Count extinctions (with reset_on_extinction a new population follows)."""
        self.run.scalar("neat/extinctions", 1.0, self.agent.frames)


# --------------------------------------------------------------------------- the agent


class NEATAgent:
    """NEAT with neat-python 2.0 (see the module docstring)."""

    algo = "neat"
    Spec = NEATSpec

    def __init__(self, spec: NEATSpec, env_spec: EnvSpec, seed: int):
        self.spec = spec
        self.env_spec = env_spec
        self.seed = seed
        self.config: neat.Config | None = None
        self.population: neat.Population | None = None
        self.generation_progress = 0.0
        self.champion = None
        self.frames = 0
        self.discrete = True
        self.input_scale = 1.0
        self.warnings: list[str] = []
        self.solved = False
        self._solvers: list = []  # genomes of this generation that met the success rule from the real start
        self.profile = None
        self._backend: Backend | None = None

    # ------------------------------------------------------------------ set-up
    @classmethod
    def problems(cls, spec: NEATSpec, env=None) -> list[tuple[str, str]]:
        """Check the NEAT config the settings name (readable, valid, no unknown keys) before any run starts.

        Input and output sizes come from the env later; any sizes do to check the file. NEAT reads any flat
        observation (tiles, RAM variables, small pixels), but not the pixels+ram dict; fixed episode seeds do
        not go with a pool weighted by failures (``env`` is then an EnvSpec, which knows the states).
        """
        if env is not None and env.obs == "pixels+ram":
            return [("algo", "NEAT reads one flat observation: use env.obs: ram (or tiles, or pixels)")]
        pool = getattr(env, "state", None)  # the start states, where the caller knows them (an EnvSpec)
        if spec.episode_seeds and env is not None and env.pool_weighting == "failures" \
                and isinstance(pool, (list, dict)) and len(pool) > 1:
            # a seed draws the start state too, and failure weights differ from worker to worker
            return [("episode_seeds", "fixed episode seeds and env.pool_weighting: failures would give genomes "
                                      "different start states under the same seed: use pool_weighting: fixed "
                                      "(each seed then also fixes its episode's start state)")]
        try:
            load_neat_config(spec.config, 1, 1, pop_size=spec.pop_size)
        except AgentError as e:
            return [("config", str(e))]
        return []


    def setup(self, config_dir: Path | None = None) -> None:
        """Resolve the neat-python config for this env; write it to ``config_dir/neat.cfg`` if given."""
        _game, self.profile = self.env_spec.check()
        n_inputs, obs_dtype, n_outputs, discrete = env_spaces(self.env_spec)
        self.discrete = discrete
        self.input_scale = self.spec.input_scale or (1 / 255 if obs_dtype == "uint8" else 1.0)
        extra = n_outputs if self.spec.last_action else 0
        self.config, self.warnings = load_neat_config(self.spec.config, n_inputs + extra, n_outputs,
                                                      pop_size=self.spec.pop_size)
        if config_dir is not None:
            self.config.save(str(Path(config_dir) / "neat.cfg"))

    # ------------------------------------------------------------------ learning

    def learn(self, budget_frames: int, run) -> None:
        """Evolve until the frame budget (or generations, or the goal), checkpointing every generation."""
        ckpt = run.latest_checkpoint()
        self.setup(run.dir)
        for w in self.warnings:
            run.warn(w)
        if ckpt is not None:
            self._restore(ckpt, trust_pickles=getattr(run, "trust_pickles", False))
        else:
            self.population = neat.Population(self.config, seed=self.seed)
            self.champion = next(iter(self.population.population.values()))
        self.population.add_reporter(TensorBoardReporter(self, run))
        run.hyperparameters(self._hparams())
        generations = run.spec.budget.generations
        workers = self.spec.workers or cores()
        setup = WorkerSetup(env_spec=self.env_spec.model_dump(), profile=self.profile,
                            config_text=(run.dir / "neat.cfg").read_text(),
                            seed=self.seed * 1000 + 100 * run.resumes, discrete=self.discrete,
                            input_scale=self.input_scale, last_action=self.spec.last_action,
                            watch=getattr(run, "watch", None) if self.spec.backend == "local" else None)
        self._backend = self._make_backend(setup, workers)
        try:
            run.begin(self.frames, self)
            go_on = run.tick(self.frames, self)  # a resumed run may have no time left
            while (go_on and self.frames < budget_frames and not self.solved
                   and (generations is None or self.population.generation < generations)):
                t0 = time.perf_counter()
                if not self._generation(run):
                    break
                for note in self._backend.notes:
                    run.warn(note)
                self._backend.notes.clear()
                # a generation is NEAT's natural checkpoint: the population is whole only between them
                go_on = run.tick(self.frames, self, checkpoint=True, generation=self.population.generation)
                # a whole generation: evaluation, reproduction, speciation and the checkpoint, not the eval
                run.scalar("neat/generation_seconds", time.perf_counter() - t0 - run.last_eval_seconds, self.frames)
        finally:
            self._backend.close()
            self._backend = None
        run.finish(self.frames, self)

    def _make_backend(self, setup: WorkerSetup, workers: int) -> Backend:
        try:
            with _evolution_rng_kept():
                return make_backend(self.spec.backend, setup, workers, self.spec.ray_address,
                                    self.spec.ray_resources)
        except ImportError:
            raise AgentError("agent.backend: ray needs Ray: pip install 'retrodojo[ray]' (or use backend: "
                             "local)") from None
        except NoRoomForWorkers as e:
            raise AgentError(f"{e}. Add a node (or CPUs) to the cluster, lower agent.workers, or check that some "
                             "node has agent.ray_resources.") from None
        except WorkerSetupError as e:
            raise AgentError(f"a NEAT worker could not start on {e} Import the ROM on that machine with "
                             "`retrodojo roms import PATH` (or `retrodojo roms bundled`), or keep workers off "
                             "it with agent.ray_resources.") from None

    def _generation(self, run) -> bool:
        """One generation through neat-python's loop; False when the run must end (extinction, conflict)."""
        try:
            self.population.run(lambda genomes, config: self._evaluate(genomes, run), 1)
        except neat.CompleteExtinctionException:
            run.end(status="extinct", message=(
                "every species went extinct and reset_on_extinction is False: the run stops here with its "
                "last checkpoint and champion saved (set reset_on_extinction = True to start a new population)"))
            return False
        except RuntimeError as e:
            if "Configuration conflict" not in str(e):
                raise
            run.end(status="config_conflict", message=(
                f"neat-python stopped: {e} The run stops with its last checkpoint and champion saved; raise "
                "pop_size or compatibility_threshold, or lower min_species_size, then start a new run."))
            return False
        if self.population.best_genome is not None:
            best = self.pick_champion(self.population.best_genome)
            new = self.champion is None or best.key != self.champion.key
            self.champion = best
            if new and self.spec.record_champions and self.champion.fitness is not None:
                run.record_bk2(self.policy(), f"champion-gen{self.population.generation:04d}-"
                                             f"fitness{self.champion.fitness:.0f}")
        self._steer_species(run)
        c = self.config
        if not c.no_fitness_termination and self.champion.fitness is not None and \
                c.fitness_criterion in ("max", "mean", "min"):
            fits = [g.fitness for g in self.population.population.values() if g.fitness is not None]
            crit = {"max": max, "min": min, "mean": np.mean}[c.fitness_criterion]
            # neat-python returned without reproducing: the generation reached fitness_threshold
            if fits and len(fits) == len(self.population.population) and crit(fits) >= c.fitness_threshold:
                run.end(status="finished", message=f"fitness_threshold {c.fitness_threshold} reached")
                return False
        return True

    def pick_champion(self, best):
        """The champion after a generation: neat-python's best genome, unless other genomes of the generation
        met the success rule from the real start and it did not; then the fittest of those. With shared
        starts the highest weighted fitness need not be a genome that reached the goal from the level's own
        start, and that is what the champion is judged on."""
        if self._solvers and not any(g is best for g in self._solvers):
            return max(self._solvers, key=lambda g: g.fitness)
        return best

    def _steer_species(self, run) -> None:
        """Move the compatibility threshold towards ``target_species`` species.

        A fixed threshold has a narrow useful band (one species, or one per genome, which neat-python 2.0
        turns into a "Configuration conflict" once species x min_species_size exceeds pop_size). Species
        answer a new threshold only over generations, so the steps are small and a band around the target
        is left alone: bigger steps made the count swing between 2 and 13.
        """
        target = self.spec.target_species
        if target is None:
            return
        ss = self.config.species_set_config
        n = len(self.population.species.species)
        if n < target - 2:
            ss.compatibility_threshold = max(0.3, ss.compatibility_threshold / 1.03)
        elif n > target + 2:
            ss.compatibility_threshold = min(30.0, ss.compatibility_threshold * 1.03)
        run.scalar("neat/compatibility_threshold", ss.compatibility_threshold, self.frames)

    def _evaluate(self, genomes, run) -> None:
        """Fitness of every genome, played by the worker pool; logs the episodes on the frames axis.

        With a curriculum, every genome plays the same start states (the run's pool: the real start and the
        curriculum's states, weighted); only episodes from the real start count as the level's (progress,
        success, ``train/*``), and the generation's champion's episodes from the other states decide the
        curriculum's next step.
        """
        starts = run.start_pool()
        episodes = tuple(self.spec.episode_seeds) if self.spec.episode_seeds else self.spec.episodes_per_genome
        tasks = [(key, genome, episodes, starts) for key, genome in genomes]
        by_key = dict(genomes)
        self.generation_progress = 0.0
        self._solvers = []
        extra_eps: dict[int, list[dict]] = {}
        with _evolution_rng_kept():
            for key, fitness, eps in self._backend.evaluate(tasks):
                by_key[key].fitness = fitness
                self.frames += sum(e["frames"] for e in eps)
                run.record(self.frames, eps, observe=False)
                level = [e for e in eps if not is_curriculum_state(e.get("state"))]
                extra_eps[key] = [e for e in eps if is_curriculum_state(e.get("state"))]
                self.generation_progress = max([self.generation_progress] + [e["progress"] for e in level])
                if any(e["success"] for e in level):
                    self._solvers.append(by_key[key])
                    self.solved = self.solved or self.spec.stop_on_success
        if starts is not None:
            best = max(by_key, key=lambda k: by_key[k].fitness)
            run.observe_curriculum(self.frames, extra_eps.get(best, []))

    def _hparams(self) -> dict:
        c, g = self.config, self.config.genome_config
        return {"algo": "neat", "config": self.spec.config, "pop_size": c.pop_size, "num_inputs": g.num_inputs,
                "num_outputs": g.num_outputs, "feed_forward": g.feed_forward, "initial_connection":
                g.initial_connection, "compatibility_threshold": c.species_set_config.compatibility_threshold,
                "workers": self.spec.workers or cores(), "backend": self.spec.backend, "input_scale": self.input_scale,
                "action_mode": "argmax" if self.discrete else "threshold 0.5", "last_action": self.spec.last_action}

    # ------------------------------------------------------------------ checkpoints

    def write_checkpoint(self, folder: Path) -> None:
        """The whole evolutionary state (``population.json.gz``), the RNG states (``rng.json``) and the
        champion (a loadable agent)."""
        self._save_population(Path(folder) / neat_state.POPULATION_FILE)
        safe_io.save_rng(folder)
        self.save(folder)

    def _save_population(self, path: Path, extra: dict | None = None) -> None:
        p = self.population
        gc = self.config.genome_config

        def peek(counter):
            value = next(counter)
            return value, count(value)

        # neat-python's counters are itertools.count objects: reading one advances it, so each is read once
        # and a fresh one put back
        next_gid, p.reproduction.genome_indexer = peek(p.reproduction.genome_indexer)
        next_nid = None
        if gc.node_indexer is not None:
            next_nid, gc.node_indexer = peek(gc.node_indexer)
        next_sid, p.species.indexer = peek(p.species.indexer)
        doc = neat_state.population_document(p, self.champion, self.config, next_genome_key=next_gid,
                                             next_node_key=next_nid, next_species_key=next_sid, frames=self.frames,
                                             solved=self.solved, extra=extra)
        safe_io.write_json_gz(path, doc)

    def _restore(self, folder: Path, trust_pickles: bool = False) -> None:
        """Continue from the checkpoint ``folder`` (``setup`` has built the run's config)."""
        folder = Path(folder)
        fix = "To resume from the checkpoint before it, delete that folder."
        if not (folder / neat_state.POPULATION_FILE).is_file() and (folder / "population.pkl.gz").is_file():
            self._restore_legacy(legacy.neat_population(folder / "population.pkl.gz", trust_pickles))
            return
        try:
            data = safe_io.read_json_gz(folder / neat_state.POPULATION_FILE, "NEAT checkpoint")
            state = neat_state.restore_population(data, self.config, folder / neat_state.POPULATION_FILE)
            if not safe_io.restore_rng(folder):  # last: Population() re-seeds when the config has a seed
                raise AgentError(f"{folder} has no {safe_io.RNG_FILE}, so the run cannot continue exactly.")
        except AgentError as e:
            raise AgentError(f"checkpoint {folder} is unreadable: {e} {fix}") from None
        self.population, self.champion = state["population"], state["champion"]
        self.frames, self.solved = state["frames"], state["solved"]

    def _restore_legacy(self, d: dict) -> None:
        """The state dict of an earlier version's pickled checkpoint (read only with --trust-pickles)."""
        cfg = d["config"]
        gc = cfg.genome_config
        gc.innovation_tracker = d["innovation_tracker"]
        gc.node_indexer = None if d["next_node_key"] is None else count(d["next_node_key"])
        pop = neat.Population(cfg, initial_state=(d["population"], d["species"], d["generation"]))
        pop.reproduction.innovation_tracker = d["innovation_tracker"]
        pop.reproduction.genome_indexer = count(d["next_genome_key"])
        pop.reproduction.ancestors = d["ancestors"]
        pop.species.indexer = count(d["next_species_key"])
        pop.species.reporters = pop.reporters
        pop.best_genome = d["best_genome"]
        random.setstate(d["python_random"])  # last: Population() re-seeds when the config has a seed
        np.random.set_state(d["numpy_random"])
        self.config, self.population = cfg, pop
        self.champion = d["champion"]
        self.frames = d["frames"]
        self.solved = d["solved"]

    # ------------------------------------------------------------------ saving and playing

    def save(self, path: Path, optimizer: bool = False, half: bool = False) -> None:
        """Write the champion (``champion.json``), the neat-python config and ``agent.json`` into ``path``
        (a genome is small as it is: ``optimizer`` and ``half`` change nothing)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        champion = neat_state.champion_document(self.champion, self.config)
        safe_io.write_json(path / neat_state.CHAMPION_FILE, champion, indent=None)
        self.config.save(str(path / "neat.cfg"))
        nodes, conns = self.champion.size()
        write_agent_file(path, self.algo, format=safe_io.FORMAT_VERSION, seed=self.seed,
                         spec=self.spec.model_dump(mode="json"), env_spec=self.env_spec.model_dump(mode="json"),
                         discrete=self.discrete, input_scale=self.input_scale, fitness=self.champion.fitness,
                         champion_key=self.champion.key, champion_nodes=nodes, champion_connections=conns,
                         frames=self.frames,
                         generation=self.population.generation if self.population else None)

    @classmethod
    def load(cls, path: Path, device: str = "auto", trust_pickles: bool = False) -> NEATAgent:
        """Load a saved champion for playing (an earlier version's pickle only with ``trust_pickles``)."""
        path = Path(path)
        meta = read_agent_file(path)
        agent = cls(NEATSpec.model_validate(meta["spec"]), _played_env(meta["env_spec"]), meta["seed"])
        try:
            agent.config = neat.Config(neat.DefaultGenome, neat.DefaultReproduction, neat.DefaultSpeciesSet,
                                       neat.DefaultStagnation, str(path / "neat.cfg"))
        except Exception as e:  # neat-python raises anything from a damaged INI file
            raise AgentError(f"{path / 'neat.cfg'} is not a readable neat-python config ({type(e).__name__}: "
                             f"{e}).") from None
        if not (path / neat_state.CHAMPION_FILE).is_file() and (path / "champion.pkl").is_file():
            agent.champion = legacy.neat_champion(path / "champion.pkl", trust_pickles)
        else:
            data = safe_io.read_json(path / neat_state.CHAMPION_FILE, "NEAT champion")
            agent.champion = neat_state.champion_from_document(data, agent.config, path / neat_state.CHAMPION_FILE)
        discrete, scale = meta.get("discrete"), meta.get("input_scale")
        if not isinstance(discrete, bool) or not safe_io.is_number(scale) or not 0 < scale < 1e6:
            raise AgentError(f"{path / 'agent.json'} lacks the champion's action mode or input scale.")
        agent.discrete, agent.input_scale = discrete, float(scale)
        agent.frames = meta.get("frames", 0) if safe_io.is_int(meta.get("frames")) else 0
        return agent

    def policy(self) -> NEATPolicy:
        """The champion (best genome so far) as a policy."""
        return NEATPolicy(self.champion, self.config, self.discrete, self.input_scale, self.spec.last_action)


@contextmanager
def _evolution_rng_kept():
    """Keep Python's global random state (neat-python evolves with it) as it was: a backend may draw from
    it (Ray does, in the driver), which would make evolution depend on where the genomes were played."""
    state = random.getstate()
    try:
        yield
    finally:
        random.setstate(state)


def _played_env(data) -> EnvSpec:
    """A saved agent's env spec, without what only the run that saved it asked for: a shared agent.json
    must not make evaluate write movies into a folder it names."""
    return EnvSpec.model_validate(data).model_copy(update={"record_dir": None, "render_mode": None})


def env_spaces(env_spec: EnvSpec) -> tuple[int, str, int, bool]:
    """(inputs, observation dtype, outputs, discrete) of the wrapped env; the calling process must hold no
    other emulator (the env is made, read and closed here)."""
    import gymnasium as gym

    with make_env(env_spec) as env:
        obs, acts = env.observation_space, env.action_space
        return int(np.prod(obs.shape)), str(obs.dtype), int(acts.n), isinstance(acts, gym.spaces.Discrete)
