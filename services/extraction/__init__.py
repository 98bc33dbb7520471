"""Extraction workers: `text` (PDF → text, tables, metadata, with `ocr` for scanned pages) and `ai`
(text → fields)."""
