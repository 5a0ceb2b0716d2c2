"""The job spec: what a user POSTs to /jobs, validated once and stored as-is on the job row.

Field names follow the OCEC CLI flags. The API validates with these models (422 names the field);
the worker turns a stored spec into the engine's TrainConfig (``worker.engine_config``). Paths are
*relative* to the configured data and model roots; confinement is checked by the API, again by the
worker, and never trusted from the client.
"""

from __future__ import annotations

from collections.abc import Collection
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.fields import FieldInfo

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
    # epochs/epoch_NNNN.pt every N epochs (None: the worker's OCEC_CHECKPOINT_EVERY); last, best and
    # the stage entries are always written
    checkpoint_every: Epochs | None = None

    @field_validator("data_root", "pretrain")
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


class JobCreate(JobSpec):
    """POST /jobs body: the spec plus bookkeeping fields."""

    name: JobName = "job"
    priority: Annotated[int, Field(ge=-100, le=100)] = 0


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
