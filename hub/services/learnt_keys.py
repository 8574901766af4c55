"""Keys that debtors send with their mail, stored for the debtors the hub knows.

Only two kinds of key are trusted enough to encrypt to later: an Autocrypt key whose ``addr``
is the From address (the unprotect stage already checked that), and a key or certificate that
made a good signature over this very message and carries the From address (an attached
OpenPGP key, an S/MIME signer certificate). Anything else a message offers is ignored. The
sender must be a known debtor: the From address's keyed hash is looked up among the debtors'
addresses, and the key is stored for each such debtor (one person may owe several creditors).
"""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.crypto.at_rest import Keyring
from hub.crypto.errors import CryptoOperationError
from hub.crypto.pgp import PgpKeystore
from hub.errors import UserError
from hub.inbound.unprotect import LearntKey, Unprotected
from hub.services.debtor_keys import learn_debtor_key
from hub.storage.models import DebtorEmail

log = logging.getLogger(__name__)


def trusted_keys(unprotected: Unprotected) -> tuple[LearntKey, ...]:
    """The learnt keys worth keeping (see the module docstring)."""
    sender = (unprotected.from_address or "").lower()
    if not sender:
        return ()
    signers = {
        (s.fingerprint or "").upper()
        for s in unprotected.signatures
        if s.good and s.matches_from and s.fingerprint
    }
    return tuple(
        key
        for key in unprotected.learnt_keys
        if sender in {a.lower() for a in key.addresses}
        and (key.source == "autocrypt" or key.fingerprint.upper() in signers)
    )


async def store_learnt_keys(
    session: AsyncSession, keyring: Keyring, gnupghome: Path | None, unprotected: Unprotected
) -> int:
    """Store :func:`trusted_keys` for every debtor with the From address; how many were new."""
    keys = trusted_keys(unprotected)
    sender = (unprotected.from_address or "").lower()
    if not keys:
        return 0
    debtors = sorted(
        set(
            (
                await session.scalars(
                    select(DebtorEmail.debtor_id).where(
                        DebtorEmail.address_hash == keyring.email_hash(sender)
                    )
                )
            ).all()
        )
    )
    if not debtors:
        return 0
    keystore = PgpKeystore(gnupghome) if gnupghome is not None else None
    new = 0
    for debtor_id in debtors:
        for key in keys:
            try:
                new += await learn_debtor_key(
                    session, keyring, keystore, debtor_id=debtor_id, address=sender,
                    data=key.key_bytes, source=key.source,
                )  # fmt: skip
            except (UserError, CryptoOperationError) as exc:
                log.warning("debtor %s: %s key not learnt: %s", debtor_id, key.kind, exc)
    return new
