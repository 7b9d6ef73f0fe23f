"""The campaign config (YAML file or dict), validated with pydantic into one-line errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from design import InputError, Objective, Parameter, SafetyLimit, SearchSpace
from design.errors import shown
from design.parameters import CategoricalParameter, SequenceParameter

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
        "trust_weight",
    }
)

TRUST_WEIGHT = "weight"  # optional measurement column: trust in each row (scales its noise); see `weight_column`
AUTO_ENSEMBLE_ROWS = 2000  # `surrogate.kind: auto` picks the neural ensemble above this many measurements
MAX_SEED = 2**32 - 1  # seeds go to torch and numpy generators; each batch adds one
MIN_ROOM = 1e-6  # linear constraints must leave a ball this wide (ranges scaled to [0, 1]); see `SearchSpace.room`


class MeanConfig(BaseModel):
    """A mechanistic prior mean for one outcome's GP; the GP then learns the discrepancy from it."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    kind: Literal["emax", "linear", "constant"]
    input: str | None = None  # emax: the saturating parameter (e.g. a dose)
    outcome: str | None = None  # default: the first continuous outcome


class PhysicsConfig(BaseModel):
    """A built-in physics penalty term of the neural ensemble (see `surrogates.physics`)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    kind: Literal["monotonic", "bounded", "saturating"]
    input: str | None = None  # monotonic, saturating: the parameter
    outcome: str | None = None  # default: the first continuous outcome
    weight: float = Field(1.0, ge=0)
    increasing: bool = True  # monotonic only
    lower: float | None = None  # bounded only
    upper: float | None = None  # bounded only


class SurrogateConfig(BaseModel):
    """Which surrogate models the outcomes: GPs (default), a neural ensemble, or `auto`.

    `auto` picks the ensemble for more than `AUTO_ENSEMBLE_ROWS` measurements or sequence
    parameters (except in `safe_set` mode, which needs GPs), else GPs; a campaign with sequence
    parameters that does not name a kind gets `auto`. `members` and `epochs`
    size the ensemble and the classifier of binary outcomes; `mean` applies to the GP, `physics`
    to the ensemble.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    kind: Literal["gp", "ensemble", "auto"] = "gp"
    members: int = Field(5, ge=1, le=64)
    epochs: int = Field(300, ge=1, le=100_000)
    mean: MeanConfig | None = None
    physics: list[PhysicsConfig] = []


class CampaignObjective(Objective):
    """An objective; `type: binary` marks a 0/1 outcome (interacts or not), modelled by a classifier."""

    type: Literal["continuous", "binary"] = "continuous"


class AcquisitionConfig(BaseModel):
    """How hard the acquisition optimizer works; more is slower and a little better.

    Unset, `num_restarts` and `raw_samples` depend on the space (`effort`).
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    num_restarts: int | None = Field(None, ge=1, le=64)
    raw_samples: int | None = Field(None, ge=8, le=8192)
    mc_samples: int = Field(128, ge=16, le=4096)

    def effort(self, mixed: bool) -> tuple[int, int]:
        """`(num_restarts, raw_samples)`: as set, else 3 and 64, or 8 and 256 on a `mixed` space.

        They were chosen for botorch's alternating optimizer, which starts each restart at a
        random design and walks the discrete levels from there, so it needs more starts to cover
        the combinations (on the nanoparticle benchmark, 5 seeds, the median best safe
        activation went from 6.21 to 6.76 with them). The batched optimizer that now handles
        spaces with at most `design.mixed.MAX_COMBINATIONS` combinations shares `raw_samples`
        among the combinations and starts from the best of each plus `num_restarts` more.
        """
        restarts, raw = (8, 256) if mixed else (3, 64)
        return self.num_restarts or restarts, self.raw_samples or raw


class CampaignConfig(BaseModel):
    """Everything that defines a campaign: the space, the goals and the models.

    Example:
        >>> config = load_config({"name": "demo", "parameters": [
        ...     {"name": "x", "type": "continuous", "bounds": [0, 1]}],
        ...     "objectives": [{"name": "y", "goal": "maximize"}]})
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: str = Field(min_length=1)
    seed: int = Field(0, ge=0, le=MAX_SEED)
    parameters: list[Parameter] = Field(min_length=1)
    constraints: list[str] = []
    objectives: list[CampaignObjective] = Field(min_length=1)
    safety: list[SafetyLimit] = []
    safety_mode: Literal["probabilistic", "safe_set"] = "probabilistic"
    safety_expander: Literal["goose", "ise"] = "goose"  # safe_set mode: how expanders are ranked (design.safe_set)
    safety_spread: bool = True  # probabilistic mode: no two designs of a batch on one model error (design.batch_spread)
    safety_explore: int = Field(0, ge=0, le=64)  # probabilistic mode: designs per batch held to P(safe) >= 0.5 only
    # cautious: each safety GP takes the shortest lengthscales its data do not rule out (surrogates.extrapolation)
    safety_extrapolation: Literal["fitted", "cautious"] = "fitted"
    surrogate: SurrogateConfig = SurrogateConfig()
    acquisition: AcquisitionConfig = AcquisitionConfig()

    @model_validator(mode="after")
    def _check_names(self) -> CampaignConfig:
        params = [p.name for p in self.parameters]
        if len(set(params)) != len(params):
            raise ValueError(f"parameters must have distinct names. Got {shown(params, 200)} instead.")
        objectives = [o.name for o in self.objectives]
        if len(set(objectives)) != len(objectives):
            raise ValueError(f"objectives must have distinct names. Got {shown(objectives, 200)} instead.")
        if self.safety_mode == "safe_set" and not self.safety:
            raise ValueError("safety_mode safe_set needs at least one safety limit. Add one or use probabilistic.")
        if self.safety_explore and (self.safety_mode != "probabilistic" or not self.safety):
            raise ValueError(
                f"safety_explore {self.safety_explore} needs safety_mode probabilistic and at least one safety limit. "
                "Set safety_explore: 0 or change the mode."
            )
        noise: dict[str, float] = {}
        goals: list[CampaignObjective | SafetyLimit] = [*self.objectives, *self.safety]
        for goal in goals:
            if goal.noise_sd is not None and noise.setdefault(goal.name, goal.noise_sd) != goal.noise_sd:
                raise ValueError(f"outcome {shown(goal.name)} has two different noise_sd values. Give one.")
        for name in self.outcomes:
            if name in params:
                raise ValueError(f"outcome {shown(name)} is also a parameter. Rename one of them.")
        for name in params + self.outcomes:
            if name in RESERVED_NAMES or name.endswith(("_mean", "_sd", "_widened")):
                raise ValueError(
                    f"{shown(name)} is a name Valley uses for its own columns ({', '.join(sorted(RESERVED_NAMES))}, "
                    "*_mean, *_sd, *_widened). Rename it."
                )
        for i, constraint in enumerate(self.constraints):
            try:
                SearchSpace(self.parameters, [constraint])
            except (InputError, ValueError) as err:
                raise ValueError(f"constraints[{i}]: {err}") from None
        self._check_room()
        self._check_binary()
        self._check_surrogate()
        if "kind" not in self.surrogate.model_fields_set and any(p.type == "sequence" for p in self.parameters):
            # sequences default to `auto`: the ensemble's CNN/pairwise encoder (GPs where safe_set needs them)
            self.surrogate = self.surrogate.model_copy(update={"kind": "auto"})
        return self

    def _check_room(self) -> None:
        """Refuse linear constraints that no design satisfies, or that leave only a sliver of the space."""
        if not self.constraints:
            return
        room = SearchSpace(self.parameters, self.constraints).room()
        if room is not None and room >= MIN_ROOM:
            return
        if room is None:
            for i, constraint in enumerate(self.constraints):
                if SearchSpace(self.parameters, [constraint]).room() is None:
                    raise ValueError(
                        f"constraints[{i}] {shown(constraint, 120)} cannot hold for any design within the parameters' "
                        "bounds. Fix the constraint or widen the bounds."
                    )
            raise ValueError(
                f"no design satisfies all {len(self.constraints)} constraints together within the parameters' bounds. "
                "Loosen a constraint or widen the bounds."
            )
        raise ValueError(
            f"the constraints leave designs only in a sliver thinner than {MIN_ROOM:g} of the parameters' ranges "
            "(or a single point), too thin to search. Narrow the bounds to the region the constraints allow, or "
            "loosen the constraints."
        )

    def _check_binary(self) -> None:
        binary = self.binary_outcomes
        for name in binary:
            taken = f"p_{name}"
            if taken in params_and_outcomes(self):
                raise ValueError(f"{taken!r} is the column Valley uses for P({name} = 1). Rename that parameter.")
        if binary and len(self.objectives) > 1:
            raise ValueError(
                f"objectives: a binary objective ({binary[0]!r}) must be the only objective. Got "
                f"{len(self.objectives)} objectives. Keep one, or make the others safety limits."
            )
        for i, goal in enumerate(self.objectives):
            if goal.type == "binary" and goal.goal == "target":
                raise ValueError(
                    f"objectives[{i}].goal must be maximize or minimize for a binary outcome. Got 'target' instead."
                )
            if goal.type == "binary" and goal.noise_sd is not None:
                raise ValueError(f"objectives[{i}].noise_sd does not apply to a binary outcome. Remove it.")
        for i, limit in enumerate(self.safety):
            if limit.name in binary:
                raise ValueError(
                    f"safety[{i}].name {limit.name!r} is a binary objective; a safety limit needs a continuous "
                    "outcome. Use another outcome."
                )

    def _check_surrogate(self) -> None:
        sur = self.surrogate
        continuous = [p.name for p in self.parameters if not isinstance(p, CategoricalParameter | SequenceParameter)]
        regression = self.regression_outcomes
        if (sur.mean is not None or sur.physics) and not regression:
            raise ValueError(
                "surrogate.mean and surrogate.physics apply to continuous outcomes; this campaign has none. "
                "Remove them."
            )
        if sur.kind == "ensemble" and self.safety_mode == "safe_set":
            raise ValueError(
                "surrogate.kind 'ensemble' cannot be used with safety_mode safe_set (the safe set needs one GP "
                "per outcome). Use kind: gp (or auto), or safety_mode: probabilistic."
            )
        if sur.mean is not None:
            if sur.kind == "ensemble":
                raise ValueError(
                    "surrogate.mean is a GP mean function; kind is 'ensemble'. Remove mean, or use kind: gp or auto."
                )
            _check_name(sur.mean.outcome, regression, "surrogate.mean.outcome", "a continuous outcome")
            if sur.mean.kind == "emax":
                _check_name(sur.mean.input, continuous, "surrogate.mean.input", "a continuous or integer parameter")
            elif sur.mean.input is not None:
                raise ValueError(
                    f"surrogate.mean.input applies to kind emax only. Got input={sur.mean.input!r} with kind "
                    f"{sur.mean.kind!r}. Remove it."
                )
        for i, term in enumerate(sur.physics):
            where = f"surrogate.physics[{i}]"
            if sur.kind == "gp":
                raise ValueError(
                    f"{where}: physics terms train the neural ensemble; kind is 'gp'. Use kind: ensemble or auto, "
                    "or remove physics."
                )
            _check_name(term.outcome, regression, f"{where}.outcome", "a continuous outcome")
            if term.kind == "bounded":
                if term.lower is None and term.upper is None:
                    raise ValueError(f"{where} (bounded) needs lower, upper or both. Got neither. Add a bound.")
                if term.lower is not None and term.upper is not None and term.lower >= term.upper:
                    raise ValueError(
                        f"{where} (bounded) needs lower < upper. Got lower={term.lower}, upper={term.upper} instead."
                    )
                if term.input is not None:
                    raise ValueError(f"{where}.input does not apply to kind bounded. Got {term.input!r}. Remove it.")
            else:
                _check_name(term.input, continuous, f"{where}.input", "a continuous or integer parameter")
                if term.lower is not None or term.upper is not None:
                    raise ValueError(f"{where}: lower/upper apply to kind bounded only. Remove them.")

    @property
    def parameter_names(self) -> list[str]:
        return [p.name for p in self.parameters]

    @property
    def outcomes(self) -> list[str]:
        """Outcome names, objectives first, each once."""
        names = [o.name for o in self.objectives] + [s.name for s in self.safety]
        return list(dict.fromkeys(names))

    @property
    def binary_outcomes(self) -> list[str]:
        """Names of the objectives declared `type: binary` (0/1 outcomes)."""
        return [o.name for o in self.objectives if o.type == "binary"]

    @property
    def regression_outcomes(self) -> list[str]:
        """Outcomes modelled by the regression surrogate (all but the binary ones), in `outcomes` order."""
        return [name for name in self.outcomes if name not in self.binary_outcomes]

    @property
    def weight_column(self) -> str:
        """The measurement column of trust weights: `weight`, or `trust_weight` if a name is already `weight`."""
        return "trust_weight" if TRUST_WEIGHT in params_and_outcomes(self) else TRUST_WEIGHT

    def surrogate_kind(self, n_rows: int) -> str:
        """The surrogate used with `n_rows` measurements: `gp` or `ensemble` (resolves `auto`)."""
        kind = self.surrogate.kind
        if kind != "auto":
            return kind
        if self.safety_mode == "safe_set" and self.safety:
            return "gp"
        return "ensemble" if n_rows > AUTO_ENSEMBLE_ROWS or self.space().sequence_blocks else "gp"

    @property
    def confidence(self) -> float:
        """The joint confidence every proposal must reach: the strictest of the safety limits'."""
        return max((s.confidence for s in self.safety), default=0.0)

    @property
    def noise_sd(self) -> list[float | None]:
        """Known measurement noise per outcome (in `outcomes` order), None where it is learned."""
        goals: list[CampaignObjective | SafetyLimit] = [*self.objectives, *self.safety]
        given = {g.name: g.noise_sd for g in goals if g.noise_sd is not None}
        return [given.get(name) for name in self.outcomes]

    def space(self) -> SearchSpace:
        return SearchSpace(self.parameters, self.constraints)

    def scale_hints(self) -> list[str]:
        """A line per positive continuous parameter that spans `LOG_HINT_RATIO`x or more on a linear scale."""
        hints = []
        for p in self.parameters:
            low, high = getattr(p, "bounds", (0, 0))
            if p.type == "continuous" and not p.log and low > 0 and high >= LOG_HINT_RATIO * low:
                hints.append(
                    f"{p.name} spans {high / low:.0f}x ({low:g} to {high:g}) on a linear scale. If its effect is "
                    "multiplicative (a size, a concentration, a rate), set `log: true` so that the models see the "
                    "whole range evenly."
                )
        return hints


LOG_HINT_RATIO = 20.0  # `valley init` suggests `log: true` for positive ranges at least this wide


def params_and_outcomes(config: CampaignConfig) -> list[str]:
    """Every parameter and outcome name of a config."""
    return [p.name for p in config.parameters] + config.outcomes


def _check_name(name: str | None, allowed: list[str], where: str, what: str) -> None:
    if name is not None and name not in allowed:
        raise ValueError(f"{where} must be {what} of this campaign, one of {allowed}. Got {name!r} instead.")
    if name is None and where.endswith(".input"):
        raise ValueError(f"{where} is missing. Add input: one of {allowed}.")


def load_config(source: str | Path | dict[str, Any]) -> CampaignConfig:
    """Read and validate a config from a YAML file or a dict.

    Raises:
        InputError: one line naming the file, the field and the fix.
    """
    where = "config"
    if not isinstance(source, dict | str | Path):
        raise InputError(
            f"config must be the path of a campaign YAML file or a dict of its fields. Got {type(source).__name__} "
            "instead."
        )
    if not isinstance(source, dict):
        where = str(source) if str(source).isprintable() else shown(str(source))  # one line, even for odd names
        path = Path(source)
        if not path.is_file():
            raise InputError(f"{where}: no such file. Give the path of a campaign YAML file.")
        source = _read_yaml(path, where)
    try:
        return CampaignConfig.model_validate(source)
    except ValidationError as err:
        errors = err.errors()
        more = f" ({len(errors) - 1} more problem(s) after this one)" if len(errors) > 1 else ""
        raise InputError(f"{where}: {_describe(errors[0])}{more}") from None
    except RecursionError:
        raise InputError(f"{where}: nested too deeply to read. Write the config as in the README.") from None


def _read_yaml(path: Path, where: str) -> dict[str, Any]:
    """The mapping in a YAML file; `InputError` (starting with `where`) naming the line of a syntax error."""
    try:
        source = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or "cannot be parsed"
        raise InputError(f"{where}: broken YAML{line}: {problem}. Fix the syntax there.") from None
    except UnicodeDecodeError:
        raise InputError(f"{where}: not UTF-8 text. Save the config as a UTF-8 YAML file.") from None
    except RecursionError:
        raise InputError(f"{where}: nested too deeply to read. Write the config as in the README.") from None
    except (ValueError, OverflowError) as err:  # e.g. a number YAML cannot convert
        raise InputError(f"{where}: cannot be read as YAML ({shown(str(err))}). Fix the file.") from None
    except OSError as err:
        raise InputError(f"{where}: cannot be read ({err.strerror or err}). Check the file's permissions.") from None
    if not isinstance(source, dict):
        raise InputError(f"{where}: expected a mapping of fields (name, parameters, ...). Got {type(source).__name__}.")
    return source


def dump_config(config: CampaignConfig) -> str:
    """The config as YAML text, as it is stored in the campaign directory."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


def _plain_key(key: object) -> bool:
    """A field name that reads well as written in a message: printable, short, not empty."""
    text = str(key)
    return 0 < len(text) <= 40 and text.isprintable() and text.strip() == text


def _describe(error: Any) -> str:
    """One pydantic error as `field.path problem`."""
    tags = {"continuous", "integer", "categorical", "sequence"}
    parts = [p if isinstance(p, int) or _plain_key(p) else shown(str(p), 40) for p in error["loc"] if p not in tags]
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
        return f"{loc}.type is missing. Add type: continuous, integer, categorical or sequence."
    if kind == "union_tag_invalid":
        got = shown(error["input"].get("type"))
        return f"{loc}.type must be one of continuous, integer, categorical, sequence. Got {got} instead."
    if kind == "value_error":
        return f"{loc} {msg}" if msg.startswith("must") else f"{loc}: {msg}"
    return f"{loc}: {msg}. Got {shown(error.get('input'))} instead."
