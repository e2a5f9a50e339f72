"""NEAT (neat-python 2.0) behind the common agent interface."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class NEATSpec(BaseModel):
    """``agent:`` section for NEAT."""

    model_config = ConfigDict(extra="forbid")

    algo: Literal["neat"]
    config: str = Field(default="smb", description="neat-python config: configs/neat/<name>.cfg or a path.")
    workers: int | None = Field(default=None, ge=1, description="Evaluation processes (default: cores).")


class NEATAgent:
    """NEAT agent (being built: issue #4)."""

    algo = "neat"
    Spec = NEATSpec
