"""The job spec: what a user POSTs to /jobs, validated once and stored as-is on the job row.

Field names follow the OCEC CLI flags. The API validates with these models (422 names the field);
the worker turns a stored spec into the engine's TrainConfig (``worker.engine_config``). Paths are
*relative* to the configured data and model roots; confinement is checked by the API, again by the
worker, and never trusted from the client.
"""

from __future__ import annotations

from collections.abc import Collection
from enum import StrEnum
from itertools import pairwise
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo

from jobstore.halving import default_rungs
from jobstore.notify.urls import WebhookUrl
from jobstore.text import check_safe

MAX_EPOCHS = 10_000
MAX_BATCH = 65_536


class GateFailPolicy(StrEnum):
    KEEP_TRYING = "keep-trying"
    PAUSE = "pause"
    PROCEED = "proceed"
    STOP = "stop"


class MarginMethod(StrEnum):
    NONE = "none"
    COSFACE = "cosface"
    ARCFACE = "arcface"


class AugmentPolicy(StrEnum):
    NONE = "none"
    LIGHT = "light"
    OCEC = "ocec"


LearningRate = Annotated[float, Field(gt=0, le=1.0, allow_inf_nan=False)]
Fraction = Annotated[float, Field(gt=0, le=1.0, allow_inf_nan=False)]
GateF1 = Annotated[float, Field(ge=0, le=1.0, allow_inf_nan=False)]
Epochs = Annotated[int, Field(ge=1, le=MAX_EPOCHS)]  # an epoch number or an epoch budget
StageNumber = Annotated[int, Field(ge=1, le=3)]
RelPath = Annotated[str, Field(min_length=1, max_length=1024)]
# Free text people read (names, filters): no control or bidi characters (jobstore.text).
SafeText = Annotated[str, AfterValidator(check_safe)]
JobName = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(check_safe)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", use_enum_values=True)


# A gated stage's settings: the one declaration of their names, bounds and defaults (the API's fork
# overrides derive from it; tests/worker/test_mirrors.py checks the engine's StageGateConfig copy).
class StageGateSpec(_Strict):
    gate_f1: GateF1 = 0.80
    unfreeze_ratio: Fraction = 0.5
    lr_factor: Fraction = 0.05
    lr: LearningRate | None = None
    on_gate_fail: GateFailPolicy = GateFailPolicy.KEEP_TRYING
    gate_deadline_epoch: Epochs | None = None
    epoch: Epochs | None = None


class Stage2Spec(StageGateSpec):
    """Stage 2's gate epoch is ``unfreeze_backbone_epoch`` (``jobstore.gates``): an ``epoch`` here
    would be ignored, so it is refused (422 naming ``stage2.epoch``); a stored null still loads."""

    @field_validator("epoch")
    @classmethod
    def _no_epoch(cls, value: int | None) -> int | None:
        if value is not None:
            raise ValueError("stage 2 has no epoch of its own: its gate epoch is unfreeze_backbone_epoch")
        return value


class Stage3Spec(StageGateSpec):
    gate_f1: GateF1 = 0.85
    unfreeze_ratio: Fraction = 1.0
    lr_factor: Fraction = 0.025


class NotifySpec(_Strict):
    """Webhooks of one job (docs/notifications.md): the server calls ``urls`` and signs with ``secret``,
    which the API never shows again (a job's status drops it from its spec)."""

    urls: Annotated[list[WebhookUrl], Field(min_length=1, max_length=5)]
    secret: Annotated[str, Field(min_length=16, max_length=256, pattern=r"^[\x21-\x7e]+$")]


class JobSpec(_Strict):
    """The training part of a job: everything the worker needs to run it."""

    data_root: RelPath
    pretrain: RelPath | None = None
    stage: StageNumber = 1
    lr: LearningRate = 1e-4
    epochs: Epochs = 30
    batch_size: Annotated[int, Field(ge=1, le=MAX_BATCH)] = 256
    freeze_backbone: bool = True
    unfreeze_backbone_epoch: Epochs | None = None
    stage2: Stage2Spec = Field(default_factory=Stage2Spec)
    stage3: Stage3Spec | None = None
    margin_method: MarginMethod = MarginMethod.COSFACE
    use_amp: bool = False
    warmup_epochs: Annotated[int, Field(ge=0, le=MAX_EPOCHS)] = 0
    weight_decay: Annotated[float, Field(ge=0, le=1.0, allow_inf_nan=False)] = 1e-4
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 42
    image_size: Annotated[str, Field(pattern=r"^\d{1,4}x\d{1,4}$")] = "32x64"
    base_channels: Annotated[int, Field(ge=4, le=512)] = 32
    num_blocks: Annotated[int, Field(ge=1, le=16)] = 4
    dropout: Annotated[float, Field(ge=0, lt=1.0, allow_inf_nan=False)] = 0.3
    val_ratio: Annotated[float, Field(gt=0, lt=1.0, allow_inf_nan=False)] = 0.2
    augment: AugmentPolicy = AugmentPolicy.OCEC
    notify: NotifySpec | None = None  # a service setting: the engine never sees it
    # A service setting, not the engine's: how many epoch checkpoints the retention pass keeps
    # (jobstore.retention); None: the server's keep_epoch_checkpoints.
    keep_epochs: Annotated[int, Field(ge=0, le=MAX_EPOCHS)] | None = None
    # a seeded share of each class held out of train and val as the test split, when the data has none
    test_fraction: Annotated[float, Field(ge=0, le=0.5, allow_inf_nan=False)] = 0.0
    # the source domain A (under the data root, like data_root): evaluated before and after (forgetting)
    retention_data_root: RelPath | None = None
    # epochs/epoch_NNNN.pt every N epochs (None: the worker's OCEC_CHECKPOINT_EVERY); last, best and
    # the stage entries are always written
    checkpoint_every: Epochs | None = None

    @field_validator("data_root", "pretrain", "retention_data_root")
    @classmethod
    def _relative(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if "\x00" in value:
            raise ValueError("must not contain NUL bytes")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> JobSpec:
        if self.unfreeze_backbone_epoch is not None and self.unfreeze_backbone_epoch > self.epochs:
            raise ValueError("unfreeze_backbone_epoch must not exceed epochs")
        if self.stage == 3 and self.stage3 is None:
            raise ValueError("stage 3 needs a stage3 section")
        return self


# JobSpec fields the service acts on and the engine never sees (tests/worker/test_mirrors.py).
SERVICE_FIELDS = frozenset({"keep_epochs", "notify"})


class JobCreate(JobSpec):
    """POST /jobs body: the spec plus bookkeeping fields."""

    name: JobName = "job"
    priority: Annotated[int, Field(ge=-100, le=100)] = 0
    race: RaceSpec | None = Field(default=None, description="race stage-2 recipes from one stage 1")

    @field_validator("race")
    @classmethod
    def _race_fits(cls, race: RaceSpec | None, info: ValidationInfo) -> RaceSpec | None:
        if race is None:
            return None
        check_race(race, info.data)
        if race.rungs is None:  # stored explicit, so the status shows where the cuts fall
            unfreeze, epochs = info.data["unfreeze_backbone_epoch"], int(info.data["epochs"])
            race = race.model_copy(update={"rungs": default_rungs(unfreeze, epochs)})
        return race


def spec_dict(spec: JobSpec) -> dict[str, Any]:
    """The JSON stored on the job row (a ``JobCreate``'s without its bookkeeping fields)."""
    return spec.model_dump(mode="json", include=set(JobSpec.model_fields))


def optional_fields(model: type[BaseModel], *, exclude: Collection[str] = ()) -> dict[str, Any]:
    """``model``'s fields as ``pydantic.create_model`` definitions, each optional (None: not given)
    with the same bounds, so a partial section is checked as the whole one is."""
    return {
        name: (_bounded(info) | None, None)
        for name, info in model.model_fields.items()
        if name not in exclude
    }


def _bounded(info: FieldInfo) -> Any:
    """A field's type with its bounds (``Field(ge=...)`` lands in ``metadata``)."""
    return Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation


def without_secrets(spec: dict[str, Any]) -> dict[str, Any]:
    """A stored spec as the API shows it: ``notify.secret`` left out (it signs the job's webhooks)."""
    notify = spec.get("notify")
    if not isinstance(notify, dict) or "secret" not in notify:
        return spec
    return {**spec, "notify": {key: value for key, value in notify.items() if key != "secret"}}


# ---- a race of stage-2 recipes (docs/race.md) -------------------------------------------------------
CandidateName = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
MAX_CANDIDATES = 16


class RaceCandidate(_Strict):
    """One stage-2 plan: stage-2 overrides on the job's own section, or a full fine-tune from model A."""

    name: CandidateName
    stage2: dict[str, Any] = Field(default_factory=dict, description="partial stage-2 section")
    full_finetune: bool = Field(default=False, description="freeze_backbone off, from model A (pretrain)")

    @field_validator("stage2")
    @classmethod
    def _stage2(cls, value: dict[str, Any]) -> dict[str, Any]:
        checked = Stage2Overrides.model_validate(value)  # bounds of the spec's own section
        return checked.model_dump(mode="json", exclude_none=True)

    @model_validator(mode="after")
    def _one_kind(self) -> RaceCandidate:
        if self.full_finetune and self.stage2:
            raise ValueError("stage2 overrides do not apply to a full fine-tune")
        return self


# The stage-2 settings a candidate (or a fork) may change: the section's fields, each optional.
Stage2Overrides = create_model(
    "Stage2Overrides",
    __base__=_Strict,
    **optional_fields(StageGateSpec, exclude={"epoch"}),
)

FORCED = {"on_gate_fail": GateFailPolicy.PROCEED.value}  # the race, not the gate, judges a recipe


def default_candidates() -> list[RaceCandidate]:
    """The guide's recipe, the back half at lr x1, the whole backbone at lr x1, and the control."""
    return [
        RaceCandidate(name="guide", stage2={**FORCED}),
        RaceCandidate(name="back-half-lr1", stage2={**FORCED, "lr_factor": 1.0, "unfreeze_ratio": 0.5}),
        RaceCandidate(name="whole-lr1", stage2={**FORCED, "lr_factor": 1.0, "unfreeze_ratio": 1.0}),
        RaceCandidate(name="full-finetune", full_finetune=True),
    ]


class RaceSpec(_Strict):
    """Successive halving over stage-2 plans forked from one shared stage 1 (``jobstore.halving``)."""

    candidates: list[RaceCandidate] = Field(
        default_factory=default_candidates, min_length=1, max_length=MAX_CANDIDATES
    )
    rungs: list[Epochs] | None = Field(
        default=None,
        max_length=32,
        description="epochs at which to halve (default: 1/4 and 1/2 into stage 2)",
    )
    keep_fraction: Annotated[float, Field(gt=0, lt=1.0, allow_inf_nan=False)] = 0.5
    budget_sample_epochs: Annotated[int, Field(ge=1)] | None = None
    retention_floor: Annotated[float, Field(ge=0, le=1.0, allow_inf_nan=False)] | None = None

    @field_validator("candidates")
    @classmethod
    def _unique(cls, value: list[RaceCandidate]) -> list[RaceCandidate]:
        names = [c.name for c in value]
        if len(set(names)) != len(names):
            raise ValueError(f"candidate names must be unique, got {names}")
        return value

    @property
    def rung_epochs(self) -> list[int]:
        """The rungs as stored (a submitted race has them filled in, see ``JobCreate._race_fits``)."""
        return self.rungs or []

    @field_validator("rungs")
    @classmethod
    def _increasing(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and any(b <= a for a, b in pairwise(value)):
            raise ValueError(f"rungs must be strictly increasing epochs, got {value}")
        return value


def check_race(race: RaceSpec, spec: dict[str, Any]) -> None:
    """A race needs a progressive job whose stage 1 ends before its epoch budget (``ValueError``
    names the field: pydantic reports it under ``race``)."""
    gate = spec.get("unfreeze_backbone_epoch")
    epochs = int(spec.get("epochs", 0))
    if not spec.get("freeze_backbone", True):
        raise ValueError("race: needs freeze_backbone on (stage 1 is what the candidates share)")
    if gate is None or gate < 2:
        raise ValueError("race: needs unfreeze_backbone_epoch >= 2 (stage 1 is epochs 1 .. U-1)")
    if gate > epochs:
        raise ValueError("race: unfreeze_backbone_epoch must not exceed epochs")
    for rung in race.rungs or []:
        if not gate <= rung < epochs:
            raise ValueError(
                f"race.rungs: {rung} is outside [unfreeze_backbone_epoch {gate}, epochs {epochs})"
            )
    for i, candidate in enumerate(race.candidates):
        if candidate.full_finetune and not spec.get("pretrain"):
            raise ValueError(
                f"race.candidates.{i}.full_finetune: the control starts from model A: set pretrain"
            )


JobCreate.model_rebuild()  # its ``race`` field names RaceSpec, defined above after it
