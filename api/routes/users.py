"""Users, their tokens, the caller itself, and the audit log."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from api.deps import DbDep, PrincipalDep, ServicesDep
from api.schemas import CODE_PATTERN, Items, RequestTime, Strict
from api.timeparse import parse_time
from hazmon import accounts

router = APIRouter(prefix="/api/v1", tags=["users"])


class UserCreate(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.@-]{1,64}$")
    role: str = Field(description="admin, duty_officer, enterprise, dispatcher, viewer")
    display_name: str | None = Field(default=None, max_length=200)
    enterprises: list[Annotated[str, Field(pattern=CODE_PATTERN)]] = Field(default=[], max_length=10_000)
    regions: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(default=[], max_length=1000)


class UserPublic(BaseModel):
    name: str
    display_name: str | None
    role: str
    disabled: bool
    created_at: datetime
    created_by: str
    enterprises: list[str]
    regions: list[str]


class TokenCreate(Strict):
    name: str | None = Field(default=None, max_length=200)
    expires_at: RequestTime | None = None


class TokenPublic(BaseModel):
    id: int
    user: str
    prefix: str
    name: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None


class TokenIssued(TokenPublic):
    token: str = Field(description="shown once; only its hash is stored")


class Me(BaseModel):
    name: str
    role: str
    enterprises: list[str] | None


@router.get("/me", response_model=Me)
def me(principal: PrincipalDep) -> dict[str, Any]:
    """Who this token is and what it may see (null enterprises = all)."""
    return {"name": principal.name, "role": principal.role, "enterprises": principal.scope_list()}


@router.post("/users", status_code=201, response_model=UserPublic)
def create_user(body: UserCreate, conn: DbDep, principal: PrincipalDep) -> dict[str, Any]:
    """Create a user with a role and a scope (admin only)."""
    principal.require("admin")
    user = accounts.create_user(conn, body.name, body.role, principal.name,
                                display_name=body.display_name, enterprises=body.enterprises,
                                regions=body.regions)
    conn.commit()
    return user


@router.get("/users", response_model=Items[UserPublic])
def list_users(conn: DbDep, principal: PrincipalDep) -> dict[str, Any]:
    principal.require("admin")
    return {"items": accounts.list_users(conn)}


@router.get("/users/{name}", response_model=UserPublic)
def get_user(name: str, conn: DbDep, principal: PrincipalDep) -> dict[str, Any]:
    principal.require("admin")
    return accounts.get_user(conn, name)


@router.post("/users/{name}/disable", response_model=UserPublic)
def disable_user(name: str, conn: DbDep, principal: PrincipalDep,
                 services: ServicesDep) -> dict[str, Any]:
    """A disabled user's tokens stop working at once."""
    principal.require("admin")
    user = accounts.set_disabled(conn, name, True)
    conn.commit()
    services.auth.forget()
    return user


@router.post("/users/{name}/enable", response_model=UserPublic)
def enable_user(name: str, conn: DbDep, principal: PrincipalDep,
                services: ServicesDep) -> dict[str, Any]:
    principal.require("admin")
    user = accounts.set_disabled(conn, name, False)
    conn.commit()
    services.auth.forget()
    return user


@router.post("/users/{name}/tokens", status_code=201, response_model=TokenIssued)
def issue_token(name: str, body: TokenCreate, conn: DbDep, principal: PrincipalDep) -> dict[str, Any]:
    """Issue a token for a user; the token is in this response only."""
    principal.require("admin")
    issued = accounts.issue_token(conn, name, body.name, body.expires_at)
    conn.commit()
    return issued


@router.get("/tokens", response_model=Items[TokenPublic])
def list_tokens(conn: DbDep, principal: PrincipalDep, user: str | None = None) -> dict[str, Any]:
    principal.require("admin")
    return {"items": accounts.list_tokens(conn, user)}


@router.delete("/tokens/{token_id}", status_code=204)
def revoke_token(token_id: int, conn: DbDep, principal: PrincipalDep,
                 services: ServicesDep) -> Response:
    """Revoke a token; it stops working at once."""
    principal.require("admin")
    accounts.revoke_token(conn, token_id)
    conn.commit()
    services.auth.forget()
    return Response(status_code=204)


@router.get("/audit")
def list_audit(conn: DbDep, principal: PrincipalDep, actor: str | None = None,
               since: str | None = None, until: str | None = None,
               limit: Annotated[int, Query(ge=1, le=100_000)] = 1000,
               format: Annotated[str, Query(pattern="^(json|csv)$")] = "json") -> Any:
    """The audit log, newest first (admin only); ``format=csv`` exports it."""
    principal.require("admin")
    rows = accounts.list_audit(conn, actor=actor, since=parse_time(since, "since") if since else None,
                               until=parse_time(until, "until") if until else None, limit=limit)
    if format == "json":
        return {"items": rows}
    out = io.StringIO()
    fields = ["id", "at", "actor", "role", "action", "target", "status", "before", "after",
              "source_ip", "user_agent"]
    writer = csv.DictWriter(out, fieldnames=fields)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: json.dumps(row[k], ensure_ascii=False, default=str)
                         if k in ("before", "after") else row[k] for k in fields})
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": "attachment; filename=audit.csv"})
