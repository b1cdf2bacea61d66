"""Every write to consents, preferences, templates and messages.

Guarantees:
- The consent ledger is only appended to; a withdrawal is a new entry.
- Permission checks are here (a crafted POST is refused with 403 and writes
  nothing); every write stamps the history user and reason.
- A message is sent at most once: queuing is idempotent on its key, and the
  send task claims the message (queued -> sending) before it touches a
  backend, so a redelivered or retried task finds nothing to do.
- At send time the consent for the message's own channel and purpose decides
  (marketing's consent never governs service or billing), then the marketing
  frequency cap, the contact point's validity and the quiet hours.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import hmac
import json

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core import signing
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import EmailMessage, get_connection
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from simple_history.utils import bulk_create_with_history, bulk_update_with_history

from cim.audit import is_system_actor, stamp, system_actor, system_reason
from cim.bulk import RowWriter, history_insert, rows_update
from customers.models import Customer, EmailAddress, PhoneNumber, SourceIdentifier
from customers.selectors import customers_visible_to

from . import rendering, selectors, sms
from .models import (
    SENDABLE_CHANNELS,
    Channel,
    ConsentEntry,
    Invoice,
    Message,
    MessageTemplate,
    Preference,
    Purpose,
    WebhookReceipt,
)

# Messages people see. Tests assert them, so change them here only.
CANNOT_RECORD_CONSENT = "Your role cannot record consent changes."
CANNOT_SET_PREFERENCES = "Your role cannot change communication preferences."
CANNOT_SEND = "Your role cannot send messages to customers."
CANNOT_EDIT_TEMPLATES = "Your role cannot write message templates."
NOT_VISIBLE = "This customer is not visible to you."
REASON_REQUIRED = "Give the reason for this change."
CHANNEL_NOT_SENDABLE = "{channel} messages cannot be sent by the system."
TEMPLATE_CHANNEL_MISMATCH = "This template is for {channel}, not {wanted}."
NOTHING_TO_SEND = "Choose a template or write a message."

NO_CONSENT = "No consent for {purpose} messages by {channel}."
CONSENT_WITHDRAWN = (
    "Consent for {purpose} messages by {channel} was withdrawn on {when} ({source})."
)
CAP_REACHED = "Marketing frequency cap reached: {count} of {cap} in the last 7 days."
NO_CONTACT_POINT = "No {kind} on file."
CONTACT_POINT_INVALID = "The {kind} {value} is invalid: {reason}."
DEFERRED_QUIET_HOURS = "Deferred: quiet hours until {until:%H:%M}."
INVOICE_CLOSED = "The invoice is {status}: its reminder is no longer due."
BACKEND_FAILED = "The {channel} backend refused the message: {error}"

UNSUBSCRIBE_SALT = "communications.unsubscribe"


def _require(actor: AbstractBaseUser, perm: str, message: str) -> None:
    if not actor.has_perm(perm):
        raise PermissionDenied(message)


def _require_visible(actor: AbstractBaseUser, customer: Customer) -> None:
    if not customers_visible_to(actor).filter(pk=customer.pk).exists():
        raise PermissionDenied(NOT_VISIBLE)


# Consent ledger ------------------------------------------------------------


@transaction.atomic
def consent_record(
    *,
    actor: AbstractBaseUser,
    customer: Customer,
    channel: str,
    purpose: str,
    granted: bool,
    source: str,
    reason: str,
    evidence: str = "",
) -> ConsentEntry:
    """Append a grant or withdrawal to the ledger; the current state follows from it."""
    _require(actor, "communications.add_consententry", CANNOT_RECORD_CONSENT)
    _require_visible(actor, customer)
    if not reason.strip():
        raise ValidationError({"reason": REASON_REQUIRED})
    return _consent_append(
        customer=customer,
        channel=channel,
        purpose=purpose,
        granted=granted,
        source=source,
        captured_by=actor,
        evidence=evidence,
        reason=reason,
        history_user=actor,
    )


def _consent_append(*, customer, history_user, **fields) -> ConsentEntry:
    entry = ConsentEntry(customer=customer, **fields)
    entry.full_clean()
    stamp(entry, actor=history_user, reason=fields["reason"][:100]).save()
    return entry


def unsubscribe_url(*, message: Message) -> str:
    """The absolute unsubscribe link of a message (kept on the object: signing it
    is a good part of rendering one)."""
    link = getattr(message, "_unsubscribe_url", None)
    if link is None:
        link = _absolute(_unsubscribe_path_prefix() + unsubscribe_token(message=message) + "/")
        message._unsubscribe_url = link
    return link


@functools.cache
def _unsubscribe_path_prefix() -> str:
    # Resolved once: reverse() per message was a tenth of a bulk send's time.
    return reverse("communications:unsubscribe", args=["T"]).removesuffix("T/")


def unsubscribe_token(*, message: Message) -> str:
    # What signing.dumps(claims, salt=UNSUBSCRIBE_SALT) makes (signing.loads reads
    # it), with one signer per key instead of one per message. Uncompressed: these
    # claims never compress shorter, so dumps(compress=True) made the same tokens.
    return _unsubscribe_signer(settings.SECRET_KEY).sign_object(
        {
            "c": message.customer_id,
            "ch": message.channel,
            "p": message.purpose,
            "m": str(message.public_id),
        }
    )


@functools.lru_cache(maxsize=4)
def _unsubscribe_signer(key: str) -> signing.TimestampSigner:
    return signing.TimestampSigner(key=key, salt=UNSUBSCRIBE_SALT)


def unsubscribe_read(token: str) -> dict | None:
    """The token's claims, or None when it was not made by us."""
    try:
        claims = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except signing.BadSignature:
        return None
    if claims.get("ch") not in Channel.values or claims.get("p") not in Purpose.values:
        return None
    return claims


@transaction.atomic
def unsubscribe_apply(*, claims: dict) -> ConsentEntry | None:
    """Withdraw consent for the token's channel and purpose (no login: the token is
    the authority). Using a link twice appends nothing more."""
    customer = Customer.objects.filter(pk=claims["c"]).first()
    if customer is None:
        return None
    current = selectors.consent_granted(
        customer_id=customer.pk, channel=claims["ch"], purpose=claims["p"]
    )
    latest = (
        ConsentEntry.objects.filter(customer=customer, channel=claims["ch"], purpose=claims["p"])
        .order_by("-recorded_at", "-id")
        .first()
    )
    if current is None and latest is not None:
        return latest
    return _consent_append(
        customer=customer,
        channel=claims["ch"],
        purpose=claims["p"],
        granted=False,
        source=ConsentEntry.Source.UNSUBSCRIBE_LINK,
        captured_by=None,
        evidence=f"Unsubscribe link in message {claims.get('m', '')}",
        reason="unsubscribe link used by the customer",
        history_user=system_actor(),
    )


# Preferences ---------------------------------------------------------------

PREFERENCE_FIELDS = (
    "preferred_channel",
    "language",
    "quiet_start",
    "quiet_end",
    "marketing_cap_per_week",
)


@transaction.atomic
def preference_set(
    *, actor: AbstractBaseUser, customer: Customer, reason: str, **fields
) -> Preference:
    _require(actor, "communications.change_preference", CANNOT_SET_PREFERENCES)
    _require_visible(actor, customer)
    if not reason.strip():
        raise ValidationError({"reason": REASON_REQUIRED})
    preference = Preference.objects.filter(customer=customer).first() or Preference(
        customer=customer
    )
    for name in PREFERENCE_FIELDS:
        if name in fields:
            setattr(preference, name, fields[name])
    preference.updated_at = timezone.now()
    preference.full_clean()
    stamp(preference, actor=actor, reason=reason[:100]).save()
    return preference


# Templates -----------------------------------------------------------------

TEMPLATE_FIELDS = ("name", "channel", "language", "purpose", "subject", "body", "is_active")


def template_check(*, subject: str, body: str) -> None:
    """Refuse a template that does not render against the documented context."""
    errors = {}
    for field, source in (("subject", subject), ("body", body)):
        try:
            rendering.render_text(source, rendering.sample_context())
        except rendering.RenderError as error:
            errors[field] = str(error)
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def template_save(
    *, actor: AbstractBaseUser, template: MessageTemplate | None = None, reason: str, **fields
) -> MessageTemplate:
    """Create or change a template; every version stays in its history."""
    perm = "change_messagetemplate" if template else "add_messagetemplate"
    _require(actor, f"communications.{perm}", CANNOT_EDIT_TEMPLATES)
    template = template or MessageTemplate()
    for name in TEMPLATE_FIELDS:
        if name in fields:
            setattr(template, name, fields[name])
    template_check(subject=template.subject, body=template.body)
    template.updated_at = timezone.now()
    template.full_clean()
    stamp(template, actor=actor, reason=(reason or "template saved")[:100]).save()
    return template


def template_preview(*, template: MessageTemplate, customer: Customer) -> tuple[str, str]:
    """The template rendered for a real customer (no message is created)."""
    context = rendering.build_context(customer=customer, unsubscribe_url="(unsubscribe link)")
    return (
        rendering.render_text(template.subject, context),
        rendering.render_text(template.body, context),
    )


# Sending -------------------------------------------------------------------


def _absolute(path: str) -> str:
    return settings.CIM_BASE_URL.rstrip("/") + path


def message_render(
    message: Message, *, subject, body, customer: Customer, invoice: dict | None = None
) -> None:
    """Fill the message's subject and body from compiled templates, for this customer
    (and invoice) only; every message ends with its unsubscribe link, whatever the
    template says. RenderError when a template does not render."""
    link = unsubscribe_url(message=message)
    context = rendering.build_context(customer=customer, invoice=invoice, unsubscribe_url=link)
    message.subject = rendering.render_compiled(subject, context).strip()[:255]
    message.body = rendering.render_compiled(body, context)
    if link not in message.body:
        footer = (
            "Stop these messages: "
            if message.channel == Channel.SMS
            else (
                f"To stop receiving {Purpose(message.purpose).label.lower()} messages by "
                f"{Channel(message.channel).label.lower()}: "
            )
        )
        message.body = f"{message.body.rstrip()}\n\n{footer}{link}\n"


def message_queue(
    *,
    actor: AbstractBaseUser,
    customer: Customer,
    channel: str,
    purpose: str,
    idempotency_key: str,
    template: MessageTemplate | None = None,
    subject: str = "",
    body: str = "",
    reason: str = "",
) -> Message:
    """Render and queue one message; the send task decides whether it may go.

    Queuing the same idempotency key again returns the first message.
    """
    _require(actor, "communications.add_message", CANNOT_SEND)
    _require_visible(actor, customer)
    existing = Message.objects.filter(idempotency_key=idempotency_key).first()
    if existing is not None:
        return existing
    if channel not in SENDABLE_CHANNELS:
        raise ValidationError(
            {"channel": CHANNEL_NOT_SENDABLE.format(channel=Channel(channel).label)}
        )
    if template is not None:
        if template.channel != channel:
            raise ValidationError(
                {
                    "template": TEMPLATE_CHANNEL_MISMATCH.format(
                        channel=template.get_channel_display(), wanted=Channel(channel).label
                    )
                }
            )
        subject, body, purpose = template.subject, template.body, template.purpose
    if not body.strip():
        raise ValidationError({"body": NOTHING_TO_SEND})
    message = Message(
        customer=customer,
        template=template,
        channel=channel,
        purpose=purpose,
        idempotency_key=idempotency_key,
        created_by=actor,
    )
    try:
        message_render(
            message,
            subject=rendering.compile_text(subject),
            body=rendering.compile_text(body),
            customer=customer,
        )
    except rendering.RenderError as error:
        raise ValidationError({"body": str(error)}) from None
    try:
        with transaction.atomic():
            stamp(message, actor=actor, reason=(reason or "message queued")[:100]).save()
    except IntegrityError:
        # Two submissions raced on the same key: the first one wins.
        return Message.objects.get(idempotency_key=idempotency_key)
    from .tasks import message_send

    transaction.on_commit(lambda: message_send.delay(message.pk))
    return message


def _quiet_until(preference: Preference | None, now: datetime.datetime):
    if not preference or preference.quiet_start is None or preference.quiet_end is None:
        return None
    start, end = preference.quiet_start, preference.quiet_end
    if start == end:
        return None
    local = timezone.localtime(now)
    t = local.time()
    quiet = (start <= t < end) if start < end else (t >= start or t < end)
    if not quiet:
        return None
    until = timezone.make_aware(datetime.datetime.combine(local.date(), end), local.tzinfo)
    if until <= local:
        until += datetime.timedelta(days=1)
    return until


_POINT_KINDS = {
    Channel.EMAIL: (EmailAddress, "email address", "email"),
    Channel.SMS: (PhoneNumber, "phone number", "number"),
}


_CONSENT_SOURCES = dict(ConsentEntry.Source.choices)


class _SendFacts:
    """What the send rules read for a batch of messages, fetched in a constant number
    of queries whatever the batch size: latest consents, preferences, recent
    marketing counts and contact points of the batch's customers."""

    def __init__(self, messages: list[Message], *, now: datetime.datetime) -> None:
        customer_ids = {m.customer_id for m in messages}
        # (customer, channel, purpose): (granted, recorded_at, source) of the latest
        # entry; plain tuples, as a model instance per customer cost more than its row.
        self.consents: dict[tuple[int, str, str], tuple] = {}
        entries = ConsentEntry.objects.filter(
            customer_id__in=customer_ids,
            channel__in={m.channel for m in messages},
            purpose__in={m.purpose for m in messages},
        ).order_by("customer_id", "channel", "purpose", "-recorded_at", "-id")
        if connection.vendor == "postgresql":
            # DISTINCT ON keeps only the latest entry per key in the database.
            entries = entries.distinct("customer_id", "channel", "purpose")
        for customer_id, channel, purpose, *latest in entries.values_list(
            "customer_id", "channel", "purpose", "granted", "recorded_at", "source"
        ):
            self.consents.setdefault((customer_id, channel, purpose), latest)
        self.preferences = {
            p.customer_id: p for p in Preference.objects.filter(customer_id__in=customer_ids)
        }
        invoice_ids = {m.invoice_id for m in messages if m.invoice_id}
        self.invoices = (
            dict(Invoice.objects.filter(pk__in=invoice_ids).values_list("pk", "status"))
            if invoice_ids
            else {}
        )
        capped = {
            m.customer_id
            for m in messages
            if m.purpose == Purpose.MARKETING
            and getattr(self.preferences.get(m.customer_id), "marketing_cap_per_week", None)
            is not None
        }
        self.marketing_counts = (
            selectors.marketing_sent_counts(customer_ids=capped, now=now) if capped else {}
        )
        self.points: dict[tuple[str, int], list] = {}
        for channel in {m.channel for m in messages}:
            model, _, attr = _POINT_KINDS[channel]
            points = (
                model.objects.filter(customer_id__in=customer_ids)
                .order_by("customer_id", "-is_primary", "id")
                .values_list("customer_id", attr, "is_valid", "invalid_reason")
            )
            for customer_id, *point in points:
                self.points.setdefault((channel, customer_id), []).append(point)

    def consent_refusal(self, message: Message) -> str:
        latest = self.consents.get((message.customer_id, message.channel, message.purpose))
        if latest is not None and latest[0]:
            return ""
        labels = {
            "purpose": Purpose(message.purpose).label.lower(),
            "channel": Channel(message.channel).label.lower(),
        }
        if latest is None:
            return NO_CONSENT.format(**labels)
        _, recorded_at, source = latest
        return CONSENT_WITHDRAWN.format(
            **labels,
            when=f"{timezone.localtime(recorded_at):%d %b %Y}",
            # What get_source_display() says, an unknown value as it is.
            source=str(_CONSENT_SOURCES.get(source, source)).lower(),
        )

    def recipient(self, message: Message) -> tuple[str | None, str]:
        """(address, "") or (None, the reason it cannot be reached)."""
        kind = _POINT_KINDS[message.channel][1]
        points = self.points.get((message.channel, message.customer_id), [])
        if not points:
            return None, NO_CONTACT_POINT.format(kind=kind)
        for value, is_valid, _ in points:
            if is_valid:
                return value, ""
        value, _, invalid_reason = points[0]
        return None, CONTACT_POINT_INVALID.format(
            kind=kind, value=value, reason=invalid_reason or "marked invalid"
        )


def _decide(message: Message, facts: _SendFacts, now: datetime.datetime) -> dict:
    """The send rules, in order: consent for the message's own channel and purpose,
    the marketing cap, the contact point, then quiet hours. Returns the fields to set;
    a status of SENDING means the message may go now."""
    invoice_status = facts.invoices.get(message.invoice_id, Invoice.Status.OPEN)
    if invoice_status != Invoice.Status.OPEN:
        # Paid or cancelled since the reminder was queued (e.g. during quiet hours).
        return {
            "status": Message.Status.SUPPRESSED,
            "status_reason": INVOICE_CLOSED.format(status=Invoice.Status(invoice_status).label),
        }
    refusal = facts.consent_refusal(message)
    if refusal:
        return {"status": Message.Status.SUPPRESSED, "status_reason": refusal}
    preference = facts.preferences.get(message.customer_id)
    if (
        message.purpose == Purpose.MARKETING
        and preference
        and preference.marketing_cap_per_week is not None
    ):
        count = facts.marketing_counts.get(message.customer_id, 0)
        if count >= preference.marketing_cap_per_week:
            return {
                "status": Message.Status.SUPPRESSED,
                "status_reason": CAP_REACHED.format(
                    count=count, cap=preference.marketing_cap_per_week
                ),
            }
    recipient, problem = facts.recipient(message)
    if recipient is None:
        return {"status": Message.Status.FAILED, "status_reason": problem}
    until = _quiet_until(preference, now)
    if until is not None:
        return {
            "status": Message.Status.QUEUED,
            "status_reason": DEFERRED_QUIET_HOURS.format(until=timezone.localtime(until)),
            "send_after": until,
            "recipient": recipient,
        }
    if message.purpose == Purpose.MARKETING:
        # Later messages of the same batch count this one against the cap.
        facts.marketing_counts[message.customer_id] = (
            facts.marketing_counts.get(message.customer_id, 0) + 1
        )
    return {"status": Message.Status.SENDING, "status_reason": "", "recipient": recipient}


def _email_for(message: Message) -> EmailMessage:
    link = unsubscribe_url(message=message)
    return EmailMessage(
        subject=message.subject,
        body=message.body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[message.recipient],
        headers={
            "X-CIM-Message-ID": str(message.public_id),
            "List-Unsubscribe": f"<{link}>",
        },
    )


def _backend_send(messages: list[Message]) -> dict[int, str]:
    """Hand `messages` to their backends; {message id: error} for those refused.

    Emails go through one open connection (one SMTP session per batch), each in
    its own send_messages call: a batch call that fails part way raises without
    saying which emails already went, and retrying them would send those twice.
    """
    errors: dict[int, str] = {}
    emails = [m for m in messages if m.channel == Channel.EMAIL]
    if emails:
        mailer = get_connection(fail_silently=False)
        try:
            mailer.open()
            for message in emails:
                try:
                    mailer.send_messages([_email_for(message)])
                except Exception as error:  # the message's outcome, not a crash
                    errors[message.pk] = str(error)
        except Exception as error:  # no connection at all: every email failed
            for message in emails:
                errors.setdefault(message.pk, str(error))
        finally:
            mailer.close()
    backend = None
    for message in messages:
        if message.channel == Channel.EMAIL:
            continue
        backend = backend or sms.get_backend()
        try:
            backend.send(to=message.recipient, body=message.body, message_id=str(message.public_id))
        except Exception as error:  # any backend failure is the message's outcome
            errors[message.pk] = str(error)
    return errors


DELIVER_FIELDS = ("status", "status_reason", "status_at", "recipient", "send_after", "sent_at")


def messages_claim(*, message_ids, now: datetime.datetime) -> list[int]:
    """Move the due queued messages among `message_ids` to "sending" and return them.

    The claim is what makes a send at most once: a redelivered task, a retried
    chunk or a second worker finds them no longer queued. A worker that dies
    after claiming leaves them in "sending" for messages_recover_stuck. The
    claim itself is stamped with history by messages_deliver's outcome write.
    """
    due = Q(send_after__isnull=True) | Q(send_after__lte=now)
    with transaction.atomic():
        ids = list(
            Message.objects.select_for_update(skip_locked=True)
            .filter(pk__in=list(message_ids), status=Message.Status.QUEUED)
            .filter(due)
            .values_list("pk", flat=True)
        )
        if ids:
            Message.objects.filter(pk__in=ids).update(status=Message.Status.SENDING, status_at=now)
    return ids


def messages_deliver(
    *,
    message_ids,
    now: datetime.datetime | None = None,
    job: str = "",
) -> dict[int, str]:
    """Claim the queued messages among `message_ids`, then send, suppress, fail or
    defer each: {message id: outcome}, "skipped" for those not claimed.

    Set-based: the queries do not depend on the number of messages (the claim, one
    load, the facts of _SendFacts, one bulk update and its history rows), emails
    go out through one backend connection. New messages take a shorter way with
    the same rules: messages_create_and_deliver.
    """
    now = now or timezone.now()
    message_ids = list(message_ids)
    claimed = messages_claim(message_ids=message_ids, now=now)
    outcomes = dict.fromkeys(message_ids, "skipped")
    if not claimed:
        return outcomes
    messages = list(Message.objects.filter(pk__in=claimed).order_by("pk"))
    for message in messages:
        message.status = Message.Status.SENDING
    to_send = _messages_decide(messages, now=now)
    if to_send:
        # Recorded before the backend is called, so that recovery can tell a message
        # that may have gone out (never resent) from one that surely did not.
        Message.objects.filter(pk__in=[m.pk for m in to_send]).update(handed_at=now)
    _messages_sent(to_send, errors=_backend_send(to_send), now=now)
    for message in messages:
        outcomes[message.pk] = message.status
    if not job:
        job = f"message send #{messages[0].pk}" if len(messages) == 1 else "message send"
    with transaction.atomic():
        messages_outcome_write(messages=messages, fields=DELIVER_FIELDS)
        _system_changes_record(messages, job=job, at=now)
    return outcomes


def _messages_decide(messages: list[Message], *, now: datetime.datetime) -> list[Message]:
    """Apply the send rules (_decide) to `messages` with one set of facts; the
    ones that may go now (status SENDING), in order."""
    facts = _SendFacts(messages, now=now)
    to_send = []
    for message in messages:
        for name, value in _decide(message, facts, now).items():
            setattr(message, name, value)
        message.status_reason = message.status_reason[:255]
        message.status_at = now
        if message.status == Message.Status.SENDING:
            to_send.append(message)
    return to_send


def _messages_sent(to_send: list[Message], *, errors: dict[int, str], now) -> None:
    """The backends' answers: sent, or failed with the backend's reason."""
    for message in to_send:
        if message.pk in errors:
            message.status = Message.Status.FAILED
            message.status_reason = BACKEND_FAILED.format(
                channel=message.get_channel_display(), error=errors[message.pk]
            )[:255]
        else:
            message.status, message.sent_at = Message.Status.SENT, now


def messages_create_and_deliver(
    *,
    messages: list[Message],
    actor: AbstractBaseUser,
    reason: str,
    job: str,
    now: datetime.datetime | None = None,
) -> dict[int, str]:
    """Insert new messages (rendered, not saved) and send, suppress, fail or defer
    each by messages_deliver's rules: {message id: outcome}. A message that
    arrives FAILED (its template did not render) is only inserted.

    The rules are applied before the insert, so each message is written once with
    its decision (one COPY) and those that went are marked sent with one UPDATE:
    the claim of messages_deliver is not needed, as nobody else sees a message
    before it is inserted and its idempotency key is unique. The ones that may go
    are inserted "sending" with handed_at set and committed before any backend is
    called: a worker killed after that leaves them to messages_recover_stuck,
    which never resends them. History: the "+" row by `actor` with `reason`, then
    the "~" row of the outcome by the system actor for `job`, as a queued and then
    delivered message has.
    """
    now = now or timezone.now()
    pending = [m for m in messages if m.status == Message.Status.QUEUED]
    to_send = _messages_decide(pending, now=now) if pending else []
    for message in to_send:
        message.handed_at = now
    messages_insert(messages=messages, actor=actor, reason=reason)
    errors = _backend_send(to_send)
    _messages_sent(to_send, errors=errors, now=now)
    with transaction.atomic():
        sent = [m.pk for m in to_send if m.pk not in errors]
        if sent:
            # Without history here: the "~" rows are copied below, in this transaction.
            Message.objects.filter(pk__in=sent).update(
                status=Message.Status.SENT, sent_at=now, status_at=now
            )
        refused = [m for m in to_send if m.pk in errors]
        messages_outcome_write(messages=refused, fields=("status", "status_reason"))
        if pending:
            _system_changes_record(pending, job=job, at=now)
    return {m.pk: m.status for m in messages}


def _system_changes_record(messages: list[Message], *, job: str, at: datetime.datetime) -> None:
    """The "~" history rows of messages a system job changed, copied set-based."""
    history_insert(
        Message,
        [m.pk for m in messages],
        history_type="~",
        user_id=system_actor().pk,
        reason=system_reason(job),
        at=at,
    )


def messages_insert(*, messages: list[Message], actor: AbstractBaseUser, reason: str) -> None:
    """Insert many new messages with their "+" history rows, in one transaction.

    The history is copied from the inserted rows in SQL (cim.bulk.history_insert):
    building a historical instance per message cost as much as the insert.
    """
    if not messages:
        return
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # COPY with reserved ids: an INSERT of a thousand rows of nineteen
            # parameters each cost more to build and parse than to run.
            writer = RowWriter()
            for message, pk in zip(
                messages, writer.reserve_ids(Message, len(messages)), strict=True
            ):
                message.pk = pk
                message._state.adding, message._state.db = False, "default"
            # Plain attribute values: every field's value adapts as is (str, int,
            # datetime, UUID, None), and get_db_prep_save per cell was a tenth of it.
            attnames = [f.attname for f in Message._meta.concrete_fields]
            writer.insert(
                Message,
                [f.column for f in Message._meta.concrete_fields],
                [tuple(getattr(m, name) for name in attnames) for m in messages],
            )
        else:
            Message.objects.bulk_create(messages, batch_size=1000)
        history_insert(
            Message,
            [m.pk for m in messages],
            history_type="+",
            user_id=actor.pk,
            reason=reason,
        )


def messages_outcome_write(*, messages: list[Message], fields: tuple[str, ...]) -> None:
    """Write `fields` of many messages in one statement (without history: the caller
    copies the rows into it with cim.bulk.history_insert in the same transaction)."""
    rows_update(Message, messages, fields)


def _finish(message: Message, status: str, reason: str, job: str, **fields) -> str:
    message.status, message.status_reason = status, reason[:255]
    message.status_at = timezone.now()
    for name, value in fields.items():
        setattr(message, name, value)
    stamp(message, actor=system_actor(), reason=system_reason(job)[:100]).save()
    return status


STUCK_AFTER = datetime.timedelta(minutes=15)
STUCK_MAY_HAVE_GONE = (
    "The worker stopped while handing this message to the {channel} backend: it may "
    "have gone out, so it is not retried (a duplicate would be worse)."
)
STUCK_REQUEUED = "Requeued: the worker stopped before sending it."


def messages_recover_stuck(
    *, now: datetime.datetime | None = None, stuck_after: datetime.timedelta = STUCK_AFTER
) -> dict[str, int]:
    """Messages left in "sending" for longer than `stuck_after` (their worker was
    killed): requeued when they never reached their backend, failed with the reason
    when they may have. Only the rows still stuck are changed (conditional update),
    so a worker that finishes meanwhile keeps its outcome."""
    now = now or timezone.now()
    stuck = Message.objects.filter(status=Message.Status.SENDING, status_at__lt=now - stuck_after)
    actor, reason = system_actor(), system_reason("stuck message recovery")
    recovered = {"requeued": 0, "failed": 0}
    with transaction.atomic():
        messages = list(stuck.select_for_update(skip_locked=True))
        for message in messages:
            if message.handed_at is None:
                message.status, message.status_reason = Message.Status.QUEUED, STUCK_REQUEUED
                message.send_after = now
                recovered["requeued"] += 1
            else:
                message.status = Message.Status.FAILED
                message.status_reason = STUCK_MAY_HAVE_GONE.format(
                    channel=message.get_channel_display().lower()
                )
                recovered["failed"] += 1
            message.status_at = now
            stamp(message, actor=actor, reason=reason)
        bulk_update_with_history(
            messages,
            Message,
            fields=["status", "status_reason", "status_at", "send_after"],
            batch_size=1000,
        )
    return recovered


def message_deliver(*, message_id: int, now: datetime.datetime | None = None) -> str:
    """Claim a queued message and send it, suppress it, fail it or defer it."""
    return messages_deliver(message_ids=[message_id], now=now)[message_id]


def messages_due(*, now: datetime.datetime | None = None, limit: int = 500) -> list[int]:
    now = now or timezone.now()
    return list(
        Message.objects.filter(status=Message.Status.QUEUED)
        # Deferred ones whose time came, and ones whose send task was lost long ago.
        .filter(
            Q(send_after__lte=now) | Q(send_after__isnull=True, created_at__lt=now - STUCK_AFTER)
        )
        .order_by("send_after", "id")
        .values_list("pk", flat=True)[:limit]
    )


# Delivery webhook ----------------------------------------------------------

WEBHOOK_UNSIGNED = "Missing signature or timestamp."
WEBHOOK_NOT_CONFIGURED = "The delivery webhook is not configured."
WEBHOOK_BAD_SIGNATURE = "Bad signature."
WEBHOOK_STALE = "Timestamp outside the allowed window."
WEBHOOK_REPLAYED = "This call was already received."
WEBHOOK_BAD_BODY = "The body is not a delivery event."
WEBHOOK_UNKNOWN_MESSAGE = "No such message."


class WebhookRefused(Exception):
    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


def webhook_signature(*, secret: str, timestamp: str, body: bytes) -> str:
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def webhook_verify(*, body: bytes, timestamp: str, signature: str, now=None) -> None:
    """Accept a call only if signed with our secret, recent, and never seen before."""
    secret = settings.CIM_WEBHOOK_SECRET
    if not secret:
        raise WebhookRefused(WEBHOOK_NOT_CONFIGURED, 403)
    if not timestamp or not signature:
        raise WebhookRefused(WEBHOOK_UNSIGNED, 401)
    signature = signature.removeprefix("sha256=")
    expected = webhook_signature(secret=secret, timestamp=timestamp, body=body)
    if not hmac.compare_digest(expected, signature):
        raise WebhookRefused(WEBHOOK_BAD_SIGNATURE, 403)
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise WebhookRefused(WEBHOOK_STALE, 403) from None
    now = now or timezone.now()
    if abs(now.timestamp() - sent_at) > settings.CIM_WEBHOOK_TOLERANCE_SECONDS:
        raise WebhookRefused(WEBHOOK_STALE, 403)
    try:
        with transaction.atomic():
            WebhookReceipt.objects.create(signature=expected)
    except IntegrityError:
        raise WebhookRefused(WEBHOOK_REPLAYED, 409) from None


_TRANSITIONS = {
    Message.Status.SENT: {Message.Status.DELIVERED, Message.Status.FAILED, Message.Status.BOUNCED},
    Message.Status.DELIVERED: {Message.Status.BOUNCED},
}


@transaction.atomic
def delivery_event_apply(*, body: bytes) -> tuple[Message, bool]:
    """Apply a verified delivery event: (message, whether its status changed).

    A hard bounce also marks the contact point invalid with the reason.
    """
    try:
        event = json.loads(body)
        public_id, status = event["message_id"], event["event"]
    except (ValueError, KeyError, TypeError):
        raise WebhookRefused(WEBHOOK_BAD_BODY, 400) from None
    if status not in (Message.Status.DELIVERED, Message.Status.FAILED, Message.Status.BOUNCED):
        raise WebhookRefused(WEBHOOK_BAD_BODY, 400)
    try:
        message = Message.objects.select_for_update().get(public_id=public_id)
    except (Message.DoesNotExist, ValueError, ValidationError):
        raise WebhookRefused(WEBHOOK_UNKNOWN_MESSAGE, 404) from None
    if status not in _TRANSITIONS.get(message.status, set()):
        return message, False
    reason = str(event.get("reason") or "")[:200]
    hard = status == Message.Status.BOUNCED and event.get("bounce", "hard") == "hard"
    if hard:
        reason = f"Hard bounce: {reason or 'no reason given'}"
    _finish(message, status, reason, f"delivery webhook for message #{message.pk}")
    if hard:
        _contact_point_invalidate(message, reason)
    return message, True


def _contact_point_invalidate(message: Message, reason: str) -> None:
    if message.channel == Channel.EMAIL:
        points = EmailAddress.objects.filter(customer=message.customer_id, email=message.recipient)
    else:
        points = PhoneNumber.objects.filter(customer=message.customer_id, number=message.recipient)
    why = f"{reason} (message #{message.pk})"[:255]
    for point in points:
        point.is_valid, point.invalid_reason = False, why
        stamp(point, actor=system_actor(), reason=system_reason("delivery webhook hard bounce"))
        point.save(update_fields=["is_valid", "invalid_reason"])


# Consent import --------------------------------------------------------------

CANNOT_IMPORT_CONSENTS = "Only administrators import consents."
IMPORT_COLUMNS = (
    "source",
    "external_id",
    "channel",
    "purpose",
    "granted",
    "recorded_at",
    "evidence",
)
_GRANTED = {
    "1": True,
    "true": True,
    "yes": True,
    "granted": True,
    "y": True,
    "0": False,
    "false": False,
    "no": False,
    "withdrawn": False,
    "n": False,
}


def consents_import(*, actor: AbstractBaseUser, rows, name: str, dry_run: bool = False) -> dict:
    """Append the consents of a CSV (dict rows keyed by IMPORT_COLUMNS) to the ledger.

    Each row names its customer by (source, external_id). A row with any
    problem is rejected with "row N, column: reason" and nothing of it is
    written; re-importing the same file appends nothing (an entry identical in
    customer, channel, purpose, consent and time is already there).
    """
    if not is_system_actor(actor) and not actor.has_perm("customers.import_customers"):
        raise PermissionDenied(CANNOT_IMPORT_CONSENTS)
    parsed, errors = [], []
    for number, raw in enumerate(rows, start=2):
        row = {key.strip().lower(): (value or "").strip() for key, value in raw.items() if key}
        problems = []
        channel, purpose = row.get("channel", "").lower(), row.get("purpose", "").lower()
        if channel not in Channel.values:
            problems.append(
                f"row {number}, channel: {channel or '(empty)'} is not one of "
                f"{', '.join(Channel.values)}"
            )
        if purpose not in Purpose.values:
            problems.append(
                f"row {number}, purpose: {purpose or '(empty)'} is not one of "
                f"{', '.join(Purpose.values)}"
            )
        granted = _GRANTED.get(row.get("granted", "").lower())
        if granted is None:
            problems.append(f"row {number}, granted: use yes or no")
        recorded_at = timezone.now()
        if row.get("recorded_at"):
            value = row["recorded_at"]
            when = parse_datetime(value)
            if when is None and parse_date(value):
                when = datetime.datetime.combine(parse_date(value), datetime.time())
            if when is None:
                problems.append(f"row {number}, recorded_at: {value} is not an ISO 8601 date")
            else:
                recorded_at = when if timezone.is_aware(when) else timezone.make_aware(when)
        parsed.append((number, row, channel, purpose, granted, recorded_at))
        errors += problems
    keys = {(r["source"].lower(), r["external_id"]) for _, r, *_ in parsed}
    identifiers = SourceIdentifier.objects.filter(
        source__in={s for s, _ in keys}, external_id__in={e for _, e in keys}
    )
    if not is_system_actor(actor):
        identifiers = identifiers.filter(customer__in=customers_visible_to(actor).values("pk"))
    customer_of = {(i.source, i.external_id): i.customer_id for i in identifiers}
    entries, rejected = [], set()
    for number, row, channel, purpose, granted, recorded_at in parsed:
        customer_id = customer_of.get((row.get("source", "").lower(), row.get("external_id", "")))
        if customer_id is None:
            errors.append(
                f"row {number}, external_id: no customer {row.get('source')}:"
                f"{row.get('external_id')}"
            )
        if any(e.startswith(f"row {number},") for e in errors):
            rejected.add(number)
            continue
        entries.append(
            ConsentEntry(
                customer_id=customer_id,
                channel=channel,
                purpose=purpose,
                granted=granted,
                recorded_at=recorded_at,
                source=ConsentEntry.Source.IMPORT,
                evidence=row.get("evidence", "") or f"imported from {name}",
                reason=f"consent import {name}"[:255],
            )
        )
    existing = set(
        ConsentEntry.objects.filter(
            customer_id__in={e.customer_id for e in entries}, source=ConsentEntry.Source.IMPORT
        ).values_list("customer_id", "channel", "purpose", "granted", "recorded_at")
    )
    new = [
        e
        for e in entries
        if (e.customer_id, e.channel, e.purpose, e.granted, e.recorded_at) not in existing
    ]
    if not dry_run and new:
        with transaction.atomic():
            bulk_create_with_history(
                new,
                ConsentEntry,
                batch_size=1000,
                default_user=actor,
                default_change_reason=f"consent import {name}"[:100],
            )
    return {
        "rows": len(parsed),
        "created": len(new),
        "unchanged": len(entries) - len(new),
        "errors": len(rejected),
        "issues": errors,
        "dry_run": dry_run,
    }
