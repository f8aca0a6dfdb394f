"""Who asked for a window: an SSH key, not a name.

At creation the requester signs the window's terms (:func:`~vcops.window.model.terms_hash`,
which covers the requester's name and public key) with their SSH key, in the
``vcops-window`` namespace, under a header no decision uses. The key is the
requester's identity: a board member whose key signed the request cannot approve or
reject it, whatever name the request carries (``VCOPS_ACTOR=dana ... --requester
intern`` is still dana), and a request naming a board member (``Dana``,
``dana@EXAMPLE.net``) must be signed with that member's key. A window whose request
signature does not verify has no valid decision.

Example payload::

    vcops-window-request-v1
    window: W-20261201-3f9a
    terms-sha256: 5b1e...
    requester: ops-oncall
"""

from __future__ import annotations

from pathlib import Path

from vcops import sshsig
from vcops.errors import ApprovalError
from vcops.inventory.models import BoardMember
from vcops.window.model import Window, terms_hash

NAMESPACE = "vcops-window"


def request_payload(window: Window) -> bytes:
    """The exact bytes the requester signs (rebuilt from the stored window on every check)."""
    return (
        "vcops-window-request-v1\n"
        f"window: {window.id}\nterms-sha256: {terms_hash(window)}\n"
        f"requester: {window.requester}\n"
    ).encode()


def _names(member: BoardMember) -> set[str]:
    email = member.email.casefold()
    return {member.name.casefold(), email, email.split("@", 1)[0]}


def requester_for(
    name: str, public_key: str, board: list[BoardMember], *, fallback: str = ""
) -> str:
    """The requester's name for a request signed with ``public_key``.

    A board member's key makes the requester that member (a different ``name`` is an
    error); another key goes by ``name`` (else ``fallback``, the acting user), which may
    not be a board member's name, e-mail or its local part (compared without case).

    Raises:
        ApprovalError: the name and the key disagree.
    """
    owner = next((m for m in board if sshsig.same_key(m.ssh_public_key, public_key)), None)
    wanted = name.strip().casefold()
    if owner is not None:
        if wanted and wanted not in _names(owner):
            raise ApprovalError(
                f"the request is signed with {owner.name}'s board key but names {name!r} as "
                f"the requester; drop --requester or sign with {name}'s own key"
            )
        return owner.name
    name = name.strip() or fallback.strip()
    wanted = name.casefold()
    if not wanted:
        raise ApprovalError("give --requester NAME (who asks for this window)")
    for member in board:
        if wanted in _names(member):
            raise ApprovalError(
                f"requester {name!r} names board member {member.name}, but the request is "
                f"not signed with {member.name}'s key; sign it with that key (--key)"
            )
    return name


def sign_request(window: Window, key: Path) -> Window:
    """``window`` with the requester's key and signature over its terms.

    Raises:
        ApprovalError: the key cannot be read or cannot sign.
    """
    try:
        public = sshsig.public_key_of(key)
        signed = window.model_copy(update={"requester_key": public})
        signature = sshsig.sign(key, request_payload(signed), NAMESPACE)
    except sshsig.SignatureError as exc:
        raise ApprovalError(str(exc)) from exc
    return signed.model_copy(update={"requester_signature": signature})


def request_problem(window: Window) -> str | None:
    """Why the window's request is not authenticated (None when its signature verifies)."""
    if not window.requester_key or not window.requester_signature:
        return (
            f"window {window.id} carries no requester signature (created before it was required?)"
        )
    if not sshsig.verify(
        window.requester_key,
        "requester",
        request_payload(window),
        window.requester_signature,
        NAMESPACE,
    ):
        return (
            f"the requester's signature on window {window.id} does not verify "
            "(its terms, requester or key were changed)"
        )
    return None


def is_requester(window: Window, member: BoardMember) -> bool:
    """Whether ``member`` asked for ``window``: by key, and by name as a second check."""
    return sshsig.same_key(member.ssh_public_key, window.requester_key) or (
        window.requester.strip().casefold() in _names(member)
    )
