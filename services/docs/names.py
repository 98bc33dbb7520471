"""Display names for uploaded files: what a user typed, made safe to show and to send back in a header."""

from __future__ import annotations

import re
import unicodedata

MAX_NAME = 200
DEFAULT_NAME = "document.pdf"
_UNSAFE = re.compile(r'[\x00-\x1f\x7f<>:"|?*]+')
_SPACES = re.compile(r"\s+")


def sanitize_filename(raw: str) -> str:
    """Keep the last path component, drop control and shell/HTML-special characters, cap the length."""
    name = unicodedata.normalize("NFC", raw or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    # Bidirectional overrides can make "evil\u202efdp.exe" display as "evil.exe.pdf".
    name = "".join(c for c in name if unicodedata.category(c) not in ("Cf", "Cc", "Cs", "Co"))
    name = _SPACES.sub(" ", _UNSAFE.sub("_", name)).strip(" .")
    if not name:
        return DEFAULT_NAME
    if len(name) > MAX_NAME:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: MAX_NAME - len(ext) - 1] + "." + ext) if dot and len(ext) <= 10 else name[:MAX_NAME]
    return name
