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


def test_the_search_rows_trigger_computes_the_same_vectors() -> None:
    """Migration 0016 moved the vectors to `document_search`, written by a trigger from the documents row."""
    side = migration("0016_document_search")
    assert side._weighted("", side.SEARCH_CHARS) == tables.SEARCH_EXPRESSION
    assert side._weighted("", side.RANK_CHARS) == tables.RANK_EXPRESSION
    # The trigger's copy names the new row's columns, the same expression otherwise.
    assert side._weighted("NEW.", side.SEARCH_CHARS) == tables.SEARCH_EXPRESSION.replace(
        "(title", "(NEW.title"
    ).replace("(sender", "(NEW.sender").replace("(filename", "(NEW.filename").replace(
        "(body_text", "(NEW.body_text"
    )
    assert set(side.WATCHED) >= {
        "title",
        "sender",
        "filename",
        "body_text",
        "document_type",
        "owner_id",
        "created_at",
    }
