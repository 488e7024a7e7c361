"""The caller's webhooks: their events POSTed, signed, to a URL of their choice, with a delivery log.

Any verified, active professional (a clinician, or a member of another profession) may register webhooks,
for their own events only (app/notifications/webhooks.py).
"""

from __future__ import annotations

import uuid
from typing import Annotated

import httpx
from fastapi import APIRouter, Depends, Query, status

from app.audit.records import Purpose, Resource
from app.deps import Db, Professional, RuntimeDep, SettingsDep, TokenClaims, TrailDep
from app.errors import AppError
from app.models.base import utcnow
from app.notifications import webhooks
from app.runtime.context import audited, before_transaction
from app.schemas.common import problems
from app.schemas.notifications import DeliveryPage, WebhookCreate, WebhookOut

router = APIRouter(prefix="/v1/webhooks", tags=["notifications"])
OPERATIONS = Purpose.OPERATIONS


@before_transaction
async def _target(
    body: WebhookCreate, settings: SettingsDep, claims: TokenClaims
) -> httpx.URL | webhooks.WebhookUrlNotAllowed:
    if isinstance(claims, AppError):  # no lookups for strangers; the route refuses them (Professional)
        return webhooks.WebhookUrlNotAllowed("not checked")
    return await webhooks.checked_target(body.url, settings)


# Resolved before the transaction opens: a DNS lookup (see webhooks.checked_target).
CheckedTarget = Annotated[httpx.URL | webhooks.WebhookUrlNotAllowed, Depends(_target)]


def _on_webhook(action: str):
    return audited(action, resource="webhook", id_param="webhook_id", purpose=OPERATIONS)


@router.post(
    "",
    operation_id="createWebhook",
    summary="Register a URL that receives the caller's events, signed with the given secret",
    status_code=status.HTTP_201_CREATED,
    response_model=WebhookOut,
    responses=problems(400, 401, 403, 409, 413, 422, 429),
    dependencies=[audited("webhook.create", purpose=OPERATIONS)],
)
async def create_webhook(
    body: WebhookCreate,
    target: CheckedTarget,
    principal: Professional,
    db: Db,
    runtime: RuntimeDep,
    trail: TrailDep,
) -> WebhookOut:
    sealer, settings = runtime.authenticator.sealer, runtime.settings
    webhook = await db.run(webhooks.register, principal.id, target, body, sealer, settings, utcnow())
    trail.resource = Resource(type="webhook", id=str(webhook.id))
    return WebhookOut.model_validate(webhook)


@router.get(
    "",
    operation_id="listWebhooks",
    summary="The caller's webhooks (their secrets are never returned)",
    response_model=list[WebhookOut],
    responses=problems(401, 403),
    dependencies=[audited("webhook.list", purpose=OPERATIONS)],
)
async def list_webhooks(principal: Professional, db: Db) -> list[WebhookOut]:
    return [WebhookOut.model_validate(webhook) for webhook in await db.run(webhooks.list_own, principal.id)]


@router.delete(
    "/{webhook_id}",
    operation_id="deleteWebhook",
    summary="Delete a webhook, its pending deliveries and its delivery log",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(401, 403, 404, 422, 429),
    dependencies=[_on_webhook("webhook.delete")],
)
async def delete_webhook(webhook_id: uuid.UUID, principal: Professional, db: Db) -> None:
    await db.run(webhooks.remove, principal.id, webhook_id)


@router.get(
    "/{webhook_id}/deliveries",
    operation_id="listWebhookDeliveries",
    summary="A webhook's delivery log, newest first: status, attempts, last answer, next attempt",
    response_model=DeliveryPage,
    responses=problems(401, 403, 404, 422),
    dependencies=[_on_webhook("webhook.delivery.list")],
)
async def list_deliveries(
    webhook_id: uuid.UUID,
    principal: Professional,
    db: Db,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> DeliveryPage:
    return await db.run(webhooks.delivery_log, principal.id, webhook_id, limit=limit, cursor=cursor)
