"""Dependencies, as Annotated aliases: the request's unit of work, its runtime, and who is calling.

What they do lives in app/runtime (unit_of_work, principals, state); routes declare audit actions, slow
dependencies and large bodies with app/runtime/context.py and body_limits.py.
A handler is `async def` and runs its database work with `await db.run(service, ...)`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.audit.records import AuditTrail
from app.authz.principal import Principal
from app.config import Settings
from app.directory.log import DirectoryLog
from app.errors import AppError
from app.platform.blobstore import BlobStore
from app.runtime import principals
from app.runtime.context import trail_of
from app.runtime.state import Runtime, runtime_of
from app.runtime.unit_of_work import DB, RequestDb
from app.services.auth import AccessClaims


async def _runtime(request: Request) -> Runtime:
    return runtime_of(request)


async def _trail(request: Request) -> AuditTrail:
    return trail_of(request)


RuntimeDep = Annotated[Runtime, Depends(_runtime)]
TrailDep = Annotated[AuditTrail, Depends(_trail)]


async def _settings(runtime: RuntimeDep) -> Settings:
    return runtime.settings


async def _blobs(runtime: RuntimeDep) -> BlobStore:
    return runtime.blobs


async def _directory_log(runtime: RuntimeDep) -> DirectoryLog:
    return runtime.directory_log


SettingsDep = Annotated[Settings, Depends(_settings)]
BlobStoreDep = Annotated[BlobStore, Depends(_blobs)]
# The device directory log's writer, for the services whose changes are directory entries.
DirectoryDep = Annotated[DirectoryLog, Depends(_directory_log)]

# The request's transaction (app.runtime.unit_of_work): committed, with its audit record, before the
# response leaves.
Db = Annotated[RequestDb, DB]

# The access token's claims, or the refusal to raise in the transaction (checked before it opens).
TokenClaims = Annotated[AccessClaims | AppError, Depends(principals.token_claims)]
CurrentPrincipal = Annotated[Principal, Depends(principals.current_principal)]
ActivePrincipal = Annotated[Principal, Depends(principals.active_principal)]
# A verified, active physician or specialist (acting as such; other roles alone do not count).
Clinician = Annotated[Principal, Depends(principals.clinician)]
# A verified, active professional of any profession (peer circles, notifications): physicians through a
# clinical role, as above.
Professional = Annotated[Principal, Depends(principals.professional)]
Physician = Annotated[Principal, Depends(principals.require_physician)]
Specialist = Annotated[Principal, Depends(principals.require_specialist)]
ComplianceOfficer = Annotated[Principal, Depends(principals.require_compliance_officer)]
Admin = Annotated[Principal, Depends(principals.require_admin)]
# A compliance officer within their export quota: each bundle reads and proves a range of the whole log.
ExportingOfficer = Annotated[Principal, Depends(principals.officer_within_export_quota)]

# The write limit of public routes (register, login, refresh), which know no user yet: per client address.
AddressWriteLimit = Depends(principals.address_write_limit)
