"""Extraction workers: `text` (PDF → text, tables, metadata) and `ai` (text → fields)."""
