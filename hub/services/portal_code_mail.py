"""The portal's one-time code mail: rendered in the debtor's language, queued in the outbox.

The mail holds the code, its lifetime and the hub's name, nothing about the case or the
person, so it is sent in clear (no key is needed) and carries no ``References`` or reply
address. The code is in the body only, never in the subject, which phones show on a locked
screen and in notifications (an override that puts it there is refused). Templates:
``mail/<lang>/portal_code.{subject,txt,html}.j2``, overridable like every mail template
(:class:`~hub.outbound.render.MailRenderer`).
"""

from __future__ import annotations

from dataclasses import dataclass
from email.utils import formataddr

from jinja2 import TemplateError
from sqlalchemy.ext.asyncio import AsyncSession

from hub.config import Settings
from hub.domain.mail import Language, RenderedMail
from hub.outbound.compose import compose_notice, to_bytes
from hub.outbound.outbox import enqueue
from hub.outbound.render import MailRenderer, TemplateRenderError
from hub.storage.models import utcnow

TEMPLATE = "portal_code"


@dataclass(frozen=True)
class PortalCodeMail:
    code: str
    minutes: int
    language: Language
    to_addr: str


def render_code_mail(renderer: MailRenderer, mail: PortalCodeMail, hub_name: str) -> RenderedMail:
    """Subject, text and HTML of the code mail (the agency's override, else the shipped one)."""
    env = renderer.environment(mail.language)
    variables = {"code": mail.code, "minutes": mail.minutes, "hub_name": hub_name}
    parts: dict[str, str] = {}
    for part in ("subject", "txt", "html"):
        name = f"{TEMPLATE}.{part}.j2"
        try:
            parts[part] = env.get_template(name).render(variables)
        except TemplateError as exc:
            raise TemplateRenderError(f"mail/{mail.language}/{name}: {exc.message}") from exc
    subject = " ".join(parts["subject"].split())
    if not subject:
        raise TemplateRenderError(f"mail/{mail.language}/{TEMPLATE}.subject.j2: empty subject")
    if mail.code in subject:
        # a subject shows on lock screens and in notifications: the code stays in the body
        raise TemplateRenderError(
            f"mail/{mail.language}/{TEMPLATE}.subject.j2: the code must not be in the subject"
        )
    if mail.code not in parts["txt"]:
        raise TemplateRenderError(f"mail/{mail.language}/{TEMPLATE}.txt.j2: the code is missing")
    return RenderedMail(
        subject=subject,
        text=parts["txt"].strip("\n") + "\n",
        html=parts["html"].strip() + "\n",
        language=mail.language,
    )


async def queue_code_mail(
    session: AsyncSession, settings: Settings, mail: PortalCodeMail, *, idempotency_key: str
) -> None:
    """Render, compose and queue the code mail in the caller's transaction."""
    renderer = MailRenderer.from_settings(settings.outbound)
    rendered = render_code_mail(renderer, mail, settings.hub.name)
    message, message_id = compose_notice(
        rendered,
        from_addr=formataddr((settings.hub.name, settings.smtp.from_address)),
        to_addr=mail.to_addr,
        message_id_domain=settings.smtp.from_address.rpartition("@")[2],
        date=utcnow(),
    )
    await enqueue(
        session,
        idempotency_key=idempotency_key,
        case_id=None,
        thread_entry_id=None,
        envelope_from=settings.smtp.from_address,
        recipients=[mail.to_addr],
        message_id=message_id,
        message=to_bytes(message),
    )
