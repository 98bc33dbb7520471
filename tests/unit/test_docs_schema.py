"""The documents service's generated columns: the migrations (which must not import app code) spell out
the same expressions that services/docs/tables.py documents, so the two cannot drift apart."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from services.docs import tables

VERSIONS = Path(tables.__file__).parent / "migrations" / "versions"


def migration(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, VERSIONS / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_columns_match_the_tables_module() -> None:
    assert migration("0001_initial").SEARCH == tables.SEARCH_EXPRESSION
    page_search = migration("0008_page_search")
    assert page_search.PAGE_SEARCH == tables.PAGE_SEARCH_EXPRESSION
    assert page_search.RANK == tables.RANK_EXPRESSION
