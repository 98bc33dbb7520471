"""Sharing documents (`docs.share.*`, `docs.link.*`): with users and groups inside Atrium, and by link with
people who have no account.

A document — or a category, meaning every document its owner files under it, now and later — is shared
with a user (found by exact email) or a group (from the permissions service) as a viewer (read, download,
preview, search) or an editor (also edit fields and re-process). Only the owner, and an administrator (with
an audit entry), changes who has access or deletes. A share link lets anyone holding it download the file
or see its page previews (one or the other), until it expires or is revoked; every use is an audit entry
the owner sees. The documents service enforces all of it in SQL (services/docs/access.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import Field, model_validator

from .base import Contract, Empty, Rpc, Text, UrlText, WireSecret
from .docs_api import PAGE_NUMBER_MAX, AccessRole, DocumentRef, DownloadTicket, PersonPublic, PreviewTicket

ShareRole = Literal["viewer", "editor"]
LinkMode = Literal["download", "preview"]  # the file only, or the page previews only
LinkAction = Literal["opened", "downloaded", "previewed"]

LINK_DEFAULT_DAYS = 7
LINK_MAX_DAYS = 365
# The token in a link's URL: 32 random bytes (256 bits), URL-safe base64 without padding.
LINK_TOKEN_PATTERN = r"^[A-Za-z0-9_-]{43}$"


class ShareTarget(Contract):
    """What is shared: one document, or one of the caller's categories (exactly one of the two)."""

    document_id: UUID | None = None
    category_id: UUID | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ShareTarget:
        if (self.document_id is None) == (self.category_id is None):
            raise ValueError("name exactly one of document_id and category_id")
        return self


class GranteeRef(Contract):
    """With whom: a user by email (or id) or a group (exactly one of the three)."""

    email: Text | None = Field(default=None, min_length=3, max_length=320)
    user_id: UUID | None = None
    group_id: UUID | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> GranteeRef:
        if sum(v is not None for v in (self.email, self.user_id, self.group_id)) != 1:
            raise ValueError("name exactly one of email, user_id and group_id")
        return self


class ShareCreate(GranteeRef):
    """The body of `POST /documents/{id}/shares` and `POST /categories/{id}/shares`: sharing again with the
    same user or group changes the role."""

    role: ShareRole = "viewer"


class ShareGrant(ShareCreate):
    document_id: UUID | None = None
    category_id: UUID | None = None

    @model_validator(mode="after")
    def _one_target(self) -> ShareGrant:
        ShareTarget(document_id=self.document_id, category_id=self.category_id)
        return self


class ShareGroup(Contract):
    id: UUID
    name: str | None = None  # None: the group was deleted


class SharePublic(Contract):
    id: UUID
    role: ShareRole
    user: PersonPublic | None = None  # exactly one of user and group
    group: ShareGroup | None = None
    # A document's access also lists the shares of the owner's categories it is filed under.
    via: Literal["document", "category"] = "document"
    category_id: UUID | None = None  # via a category: which (its name only for the owner)
    category_name: str | None = None
    created_at: datetime


class ShareList(Contract):
    """Who has access to a document (or a category)."""

    owner: PersonPublic
    role: AccessRole | None = None  # the caller's own (None: an administrator who is neither)
    can_manage: bool  # the owner, or an administrator
    shares: list[SharePublic]


class ShareRef(Contract):
    id: UUID


# ---- links ---------------------------------------------------------------------------------------------


class LinkCreate(Contract):
    """The body of `POST /documents/{id}/links`."""

    mode: LinkMode = "download"
    expires_in_days: int = Field(default=LINK_DEFAULT_DAYS, ge=1, le=LINK_MAX_DAYS)
    password: WireSecret | None = Field(default=None, min_length=6, max_length=200)


class LinkCreateFor(LinkCreate):
    document_id: UUID


class LinkAccess(Contract):
    at: datetime
    action: LinkAction
    ip: str | None = None


class LinkPublic(Contract):
    id: UUID
    document_id: UUID
    mode: LinkMode
    has_password: bool
    expires_at: datetime
    revoked_at: datetime | None = None
    created_at: datetime
    created_by: UUID
    active: bool  # neither expired nor revoked
    uses: int  # audited accesses
    recent: list[LinkAccess] = Field(default_factory=list)  # the latest uses, newest first


class LinkCreated(Contract):
    link: LinkPublic
    token: str  # shown once: only its hash is stored


class LinkList(Contract):
    items: list[LinkPublic]


class LinkRef(Contract):
    id: UUID


class LinkOpen(Contract):
    """What a visitor sends: the token from the URL, and the password when the link has one."""

    token: str = Field(pattern=LINK_TOKEN_PATTERN)
    password: WireSecret | None = Field(default=None, max_length=200)


class LinkDocument(Contract):
    filename: str
    size: int
    page_count: int | None = None
    preview_pages: int = 0


class LinkInfo(Contract):
    """A link as its visitor sees it: never the owner, other documents or anything else."""

    mode: LinkMode
    expires_at: datetime
    password_required: bool
    document: LinkDocument | None = None  # None until the password is given
    ticket: str | None = None  # for a link with a password: sent with each file or preview request


class LinkFile(Contract):
    token: str = Field(pattern=LINK_TOKEN_PATTERN)
    ticket: UrlText | None = Field(default=None, max_length=500)


class LinkPage(LinkFile):
    page: int = Field(ge=1, le=PAGE_NUMBER_MAX)


SHARE_LIST = Rpc(
    "docs.share.list", ShareTarget, ShareList, summary="Who has access to a document or a category"
)
SHARE_GRANT = Rpc(
    "docs.share.grant",
    ShareGrant,
    SharePublic,
    summary="Share a document or a category with a user or a group (again: change the role)",
)
SHARE_REVOKE = Rpc("docs.share.revoke", ShareRef, Empty, summary="Take a share back")
LINK_CREATE = Rpc("docs.link.create", LinkCreateFor, LinkCreated, summary="Create a share link")
LINK_LIST = Rpc("docs.link.list", DocumentRef, LinkList, summary="A document's share links and their uses")
LINK_REVOKE = Rpc("docs.link.revoke", LinkRef, Empty, summary="Revoke a share link")
LINK_OPEN = Rpc(
    "docs.link.open",
    LinkOpen,
    LinkInfo,
    access="public",
    summary="What a share link gives (with its password, a ticket for the file or previews)",
)
LINK_FILE = Rpc(
    "docs.link.file",
    LinkFile,
    DownloadTicket,
    access="public",
    summary="Authorise and audit a download through a share link",
)
LINK_PREVIEW = Rpc(
    "docs.link.preview",
    LinkPage,
    PreviewTicket,
    access="public",
    summary="Authorise and audit a page preview through a share link",
)
