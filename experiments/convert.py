"""``retrodojo convert``: rewrite a trusted run or saved agent of an earlier version in the safe formats.

Earlier versions pickled their agents (``champion.pkl``, ``population.pkl.gz``, ``rng.pkl``, SB3's
``model.zip``); this version refuses pickles unless told ``--trust-pickles``. Converting reads them once
(only with that flag) and writes JSON and safetensors (:mod:`agents.safe_io`), folder by folder: the new
folder is written beside the old one, loaded back and compared, and only then put in its place, so an
interrupted conversion loses nothing. ``--out DIR`` instead writes one small policy (weights only,
``--half`` for 16-bit weights) for a results record or ``models/``.
"""

from __future__ import annotations

import random
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import agents.base as agents
from agents import legacy, safe_io
from experiments.errors import UserError


@dataclass
class Converted:
    """One folder looked at: what was done (``converted``, ``already safe``, ``written``)."""

    path: Path
    action: str


def agent_folders(path: Path) -> list[Path]:
    """The saved-agent folders of a run folder (final/, best/, every checkpoint), or the saved agent itself."""
    from experiments.run import Run

    if (path / agents.AGENT_FILE).is_file():
        return [path]
    if not (path / "meta.json").is_file():
        raise UserError(f"{path} is neither a run folder nor a saved agent (no meta.json, no agent.json). "
                        "`retrodojo runs` lists runs.")
    found = [path / name for name in ("final", "best") if (path / name / agents.AGENT_FILE).is_file()]
    return found + [c for c in Run.checkpoints_of(path) if (c / agents.AGENT_FILE).is_file()]


def _same_policy(a, b) -> bool:
    if a.algo == "neat":
        return a.champion.key == b.champion.key and a.champion.size() == b.champion.size()
    import torch

    sa, sb = a.model.policy.state_dict(), b.model.policy.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k].float(), sb[k].float()) for k in sa)


def convert_folder(folder: Path) -> None:
    """Rewrite one saved-agent folder whose pickles the user trusts; checkpoints keep what resume needs."""
    meta = agents.read_agent_file(folder)
    cls = agents.agent_class(meta["algo"])
    checkpoint = (folder / "checkpoint.json").is_file()
    tmp = folder.with_name(f".{folder.name}.convert-tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    state = (random.getstate(), np.random.get_state())  # restoring a checkpoint sets the global generators
    try:
        agent = cls.load(folder, trust_pickles=True)
        if checkpoint and agent.algo == "neat" and (folder / "population.pkl.gz").is_file():
            agent._restore_legacy(legacy.neat_population(folder / "population.pkl.gz", True))
            agent.write_checkpoint(tmp)
        elif checkpoint and agent.algo != "neat":
            if (folder / "rng.pkl").is_file():
                legacy.restore_rng(folder / "rng.pkl", True)
            agent.write_checkpoint(tmp)
        else:
            agent.save(tmp)
        for item in folder.iterdir():  # checkpoint.json and anything else the folder held
            if item.name not in safe_io.LEGACY_FILES and not (tmp / item.name).exists():
                (shutil.copytree if item.is_dir() else shutil.copy2)(item, tmp / item.name)
        if not _same_policy(agent, agents.load(tmp)):
            raise UserError(f"{folder}: the converted policy does not match the pickled one; nothing was changed.")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        random.setstate(state[0])
        np.random.set_state(state[1])
    safe_io.replace_folder(tmp, folder)


def convert(path: str | Path, trust_pickles: bool = False) -> list[Converted]:
    """Convert every saved agent of a run folder (or one saved agent) in place."""
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"{path}: no such folder. Give a run folder or a saved agent folder.")
    folders = agent_folders(path)
    todo = [f for f in folders if safe_io.legacy_files(f)]
    if todo and not trust_pickles:
        raise safe_io.legacy_refusal(todo[0], safe_io.legacy_files(todo[0]))
    done = []
    for folder in folders:
        if folder in todo:
            convert_folder(folder)
            done.append(Converted(folder, "converted"))
        else:
            done.append(Converted(folder, "already safe"))
    return done


def export_policy(path: str | Path, out: str | Path, which: str = "final", half: bool = False,
                  trust_pickles: bool = False) -> Converted:
    """Write the policy ``which`` of a run (or a saved agent) as a small saved agent in ``out``: weights only,
    16-bit with ``half``; it loads in ``retrodojo evaluate`` like any saved agent."""
    from experiments.run import pick_agent

    out = Path(out)
    if (out.is_dir() and any(out.iterdir())) or (out.exists() and not out.is_dir()):
        raise UserError(f"{out} already exists; give a new folder for the policy.")
    _spec, agent_dir, _note = pick_agent(Path(path), which)
    agent = agents.load(agent_dir, trust_pickles=trust_pickles)
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        agent.save(tmp, half=half)
        agents.load(tmp)  # it must load without the flag
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out.is_dir():
        out.rmdir()
    tmp.replace(out)
    return Converted(out, "written")
