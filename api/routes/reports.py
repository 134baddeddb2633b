"""Reports: the alarm performance report (ISA-18.2 §16, EEMUA 191)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])
