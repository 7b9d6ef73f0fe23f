"""The campaign config (YAML file or dict), validated with pydantic into one-line errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from design import InputError, Objective, Parameter, SafetyLimit, SearchSpace

# Columns Valley adds to the tables it returns; parameters and outcomes may not use these names.
RESERVED_NAMES = frozenset(
    {
        "id",
        "added_at",
        "source",
        "failed",
        "status",
        "record",
        "batch_id",
        "created_at",
        "method",
        "p_safe",
        "p_feasible",
        "meets_confidence",
        "role",
        "candidate_row",
    }
)


class SurrogateConfig(BaseModel):
    """Which surrogate models the outcomes."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["gp"] = "gp"


class AcquisitionConfig(BaseModel):
    """How hard the acquisition optimizer works; more is slower and a little better."""

    model_config = ConfigDict(extra="forbid")

    num_restarts: int = Field(3, ge=1, le=64)
    raw_samples: int = Field(64, ge=8, le=8192)
    mc_samples: int = Field(128, ge=16, le=4096)


class CampaignConfig(BaseModel):
    """Everything that defines a campaign: the space, the goals and the models.

    Example:
        >>> config = load_config({"name": "demo", "parameters": [
        ...     {"name": "x", "type": "continuous", "bounds": [0, 1]}],
        ...     "objectives": [{"name": "y", "goal": "maximize"}]})
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    seed: int = 0
    parameters: list[Parameter] = Field(min_length=1)
    constraints: list[str] = []
    objectives: list[Objective] = Field(min_length=1)
    safety: list[SafetyLimit] = []
    safety_mode: Literal["probabilistic", "safe_set"] = "probabilistic"
    surrogate: SurrogateConfig = SurrogateConfig()
    acquisition: AcquisitionConfig = AcquisitionConfig()

    @model_validator(mode="after")
    def _check_names(self) -> CampaignConfig:
        params = [p.name for p in self.parameters]
        if len(set(params)) != len(params):
            raise ValueError(f"parameters must have distinct names. Got {params} instead.")
        objectives = [o.name for o in self.objectives]
        if len(set(objectives)) != len(objectives):
            raise ValueError(f"objectives must have distinct names. Got {objectives} instead.")
        if self.safety_mode == "safe_set" and not self.safety:
            raise ValueError("safety_mode safe_set needs at least one safety limit. Add one or use probabilistic.")
        noise = {}
        for goal in [*self.objectives, *self.safety]:
            if goal.noise_sd is not None and noise.setdefault(goal.name, goal.noise_sd) != goal.noise_sd:
                raise ValueError(f"outcome {goal.name!r} has two different noise_sd values. Give one.")
        for name in self.outcomes:
            if name in params:
                raise ValueError(f"outcome {name!r} is also a parameter. Rename one of them.")
        for name in params + self.outcomes:
            if name in RESERVED_NAMES or name.endswith(("_mean", "_sd")):
                raise ValueError(
                    f"{name!r} is a name Valley uses for its own columns ({', '.join(sorted(RESERVED_NAMES))}, "
                    "*_mean, *_sd). Rename it."
                )
        for i, constraint in enumerate(self.constraints):
            try:
                SearchSpace(self.parameters, [constraint])
            except (InputError, ValueError) as err:
                raise ValueError(f"constraints[{i}]: {err}") from None
        return self

    @property
    def parameter_names(self) -> list[str]:
        return [p.name for p in self.parameters]

    @property
    def outcomes(self) -> list[str]:
        """Outcome names, objectives first, each once."""
        names = [o.name for o in self.objectives] + [s.name for s in self.safety]
        return list(dict.fromkeys(names))

    @property
    def confidence(self) -> float:
        """The joint confidence every proposal must reach: the strictest of the safety limits'."""
        return max((s.confidence for s in self.safety), default=0.0)

    @property
    def noise_sd(self) -> list[float | None]:
        """Known measurement noise per outcome (in `outcomes` order), None where it is learned."""
        given = {g.name: g.noise_sd for g in [*self.objectives, *self.safety] if g.noise_sd is not None}
        return [given.get(name) for name in self.outcomes]

    def space(self) -> SearchSpace:
        return SearchSpace(self.parameters, self.constraints)


def load_config(source: str | Path | dict[str, Any]) -> CampaignConfig:
    """Read and validate a config from a YAML file or a dict.

    Raises:
        InputError: one line naming the file, the field and the fix.
    """
    where = "config"
    if not isinstance(source, dict):
        where = str(source)
        path = Path(source)
        if not path.is_file():
            raise InputError(f"{where}: no such file. Give the path of a campaign YAML file.")
        try:
            source = yaml.safe_load(path.read_text())
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            line = f" at line {mark.line + 1}" if mark is not None else ""
            problem = getattr(err, "problem", None) or "cannot be parsed"
            raise InputError(f"{where}: broken YAML{line}: {problem}. Fix the syntax there.") from None
        if not isinstance(source, dict):
            raise InputError(
                f"{where}: expected a mapping of fields (name, parameters, ...). Got {type(source).__name__}."
            )
    try:
        return CampaignConfig.model_validate(source)
    except ValidationError as err:
        errors = err.errors()
        more = f" ({len(errors) - 1} more problem(s) after this one)" if len(errors) > 1 else ""
        raise InputError(f"{where}: {_describe(errors[0])}{more}") from None


def dump_config(config: CampaignConfig) -> str:
    """The config as YAML text, as it is stored in the campaign directory."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


def _describe(error: Any) -> str:
    """One pydantic error as `field.path problem`."""
    tags = {"continuous", "integer", "categorical"}
    parts = [p for p in error["loc"] if p not in tags]
    loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts).lstrip(".")
    msg = str(error["msg"]).removeprefix("Value error, ")
    if not loc:
        return msg
    kind = error["type"]
    if kind == "missing":
        return f"{loc} is missing. Add it."
    if kind == "extra_forbidden":
        return f"{loc} is not a known field. Check the spelling; see the README for the fields."
    if kind == "union_tag_not_found":
        return f"{loc}.type is missing. Add type: continuous, integer or categorical."
    if kind == "union_tag_invalid":
        return (
            f"{loc}.type must be one of continuous, integer, categorical. Got {error['input'].get('type')!r} instead."
        )
    if kind == "value_error":
        return f"{loc} {msg}" if msg.startswith("must") else f"{loc}: {msg}"
    return f"{loc}: {msg}. Got {error.get('input')!r} instead."
