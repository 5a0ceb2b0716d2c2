"""Evaluations: score any model on any dataset in a worker, then read the report and its pictures.

``POST /evaluations`` confines what the request names (``api.evaluations.sources``), stores a queued
row and publishes ``run_evaluation`` after the commit; a worker claims it (queued → running), runs the
engine's ``evaluate_to_dir`` and stores the report (succeeded) or a reason (failed).
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response, status
from fastapi.responses import FileResponse

from api.deps import ActorDep, DispatcherDep, SessionDep, SettingsDep, TransactionDep
from api.errors import PROBLEM_RESPONSES, problems, with_problems
from api.evaluations.curves import Curve, render_curve
from api.evaluations.sources import check_threshold, resolve_data, resolve_model
from api.evaluations.views import image_file, not_found, public
from api.figures import PNG, png_responses
from api.paging import PageCursor, PageLimit, page_size
from api.schemas.evaluations import HEX_ID, EvaluationCreate, EvaluationPublic, EvaluationsPage
from jobstore.models import Evaluation
from jobstore.repo import evaluations as repo
from jobstore.repo.evaluations import NewEvaluation

router = APIRouter(prefix="/evaluations", tags=["evaluations"])
log = logging.getLogger(__name__)

IMAGE_RESPONSES = {**png_responses("a PNG image"), **problems(404, 422)}
Width = Annotated[int, Query(ge=300, le=2000, description="pixels")]
Height = Annotated[int, Query(ge=240, le=2000, description="pixels")]


def evaluation_of(session: SessionDep, evaluation_id: Annotated[str, Path(pattern=HEX_ID)]) -> Evaluation:
    evaluation = repo.get_evaluation(session, evaluation_id=evaluation_id)
    if evaluation is None:
        raise not_found(f"no evaluation with id {evaluation_id!r}")
    return evaluation


EvaluationDep = Annotated[Evaluation, Depends(evaluation_of)]


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=EvaluationPublic, responses=with_problems({})
)
def create_evaluation(
    body: EvaluationCreate,
    response: Response,
    settings: SettingsDep,
    session: SessionDep,
    transaction: TransactionDep,
    dispatcher: DispatcherDep,
    actor: ActorDep,
) -> EvaluationPublic:
    """Queue an evaluation of a model (an upload, a file under the model root, or a job's artifact) on
    a dataset (an upload or a folder under the data root); a worker runs it."""
    check_threshold(body.threshold.rule, body.threshold.target)
    model = resolve_model(session, body.model, settings.model_root, settings.runs_root)
    data = resolve_data(session, body.data, settings.data_root)
    new = NewEvaluation(
        name=body.name, owner=actor.owner, source=body.model_dump(mode="json", include={"model", "data"}),
        model_root=model.root, model_path=model.path, data_path=data, split=body.split.value,
        threshold_rule=body.threshold.rule.value, threshold_target=body.threshold.target, top_k=body.top_k,
    )  # fmt: skip
    with transaction() as tx:
        evaluation = repo.create_evaluation(tx, new=new)
        answer = public(evaluation)
    try:
        dispatcher.dispatch_evaluation(answer.id)
    except Exception:  # the row stays queued; the reaper re-sends it (jobstore.evaluation_reaper)
        log.exception("dispatch of evaluation %s failed", answer.id)
    response.headers["Location"] = answer.links.self
    return answer


@router.get("", response_model=EvaluationsPage, responses=problems(422))
def list_evaluations(
    session: SessionDep, settings: SettingsDep, limit: PageLimit = None, cursor: PageCursor = None
) -> EvaluationsPage:
    """List evaluations, newest first, with their headline numbers."""
    page = repo.list_evaluations(session, limit=page_size(settings, limit), cursor=cursor)
    return EvaluationsPage(data=[public(e) for e in page.items], next_cursor=page.next_cursor)


@router.get("/{evaluation_id}", response_model=EvaluationPublic, responses=PROBLEM_RESPONSES)
def get_evaluation(evaluation: EvaluationDep) -> EvaluationPublic:
    """One evaluation: state, progress, and once succeeded the whole report (curves, sweep, worst)."""
    return public(evaluation, with_report=True)


@router.get("/{evaluation_id}/worst.png", response_class=FileResponse, responses=IMAGE_RESPONSES)
def worst_sheet(settings: SettingsDep, evaluation: EvaluationDep) -> FileResponse:
    """The contact sheet of the most confidently wrong crops, captioned with label and P(open)."""
    return FileResponse(image_file(settings.runs_root, evaluation.out_dir, None), media_type=PNG)


@router.get("/{evaluation_id}/worst/{index}.png", response_class=FileResponse, responses=IMAGE_RESPONSES)
def worst_crop(
    settings: SettingsDep, evaluation: EvaluationDep, index: Annotated[int, Path(ge=0, le=999)]
) -> FileResponse:
    """One of the worst crops, in the report's ``worst`` order."""
    return FileResponse(image_file(settings.runs_root, evaluation.out_dir, index), media_type=PNG)


@router.get("/{evaluation_id}/{curve}.png", response_class=Response, responses=IMAGE_RESPONSES)
def curve_png(evaluation: EvaluationDep, curve: Curve, width: Width = 640, height: Height = 480) -> Response:
    """The ROC (``roc.png``) or precision-recall (``pr.png``) curve of the report."""
    if not evaluation.report:
        raise not_found(f"evaluation {evaluation.id} has no report yet (state {evaluation.state})")
    png = render_curve({evaluation.name or evaluation.id[:8]: evaluation.report}, curve, width, height)
    return Response(png, media_type=PNG, headers={"Cache-Control": "no-store"})
