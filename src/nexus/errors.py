"""The one exception hierarchy of Nexus.

    NexusError
    ├── ConfigError                 a bad nexus.toml or NEXUS_* variable; names the key and the file
    ├── InvalidArgumentError        a public function given a value it does not take; lists the valid ones
    ├── SchemaError                 the database has no Nexus schema, or an older one: run `nexus migrate`
    ├── AddressInUseError           the web app's port is taken by another process
    ├── UnknownDriverError          a channel names a driver nobody registered
    ├── UnknownChannelError         an API call or webhook names a channel that is not configured
    ├── UnknownSkuError             a stock change for a SKU that does not exist
    ├── UnknownBatchError           a batch id nobody started
    ├── BatchStrandedError          a catalog sync stalled while queueing; its batch went on without the rest
    ├── UnknownConflictError        no open reconciliation conflict has that id
    ├── DeadLetterError             a dead-letter request that cannot be done (replay without a filter)
    │   └── UnknownDeadLetterError      no dead letter has that id
    ├── ListingBusyError            a listing has a request in flight: try again shortly
    ├── WebhookError                an inbound delivery that must be refused
    │   ├── WebhookSignatureError       missing or wrong signature             -> 401
    │   ├── WebhookTooLargeError        body over the configured limit         -> 413
    │   └── WebhookPayloadError         body that is not what the channel sends -> 400
    └── ChannelError                a channel request that failed
        ├── TransientChannelError       worth retrying: 429, 5xx, timeouts, THROTTLED
        │   └── QuotaExhausted              our own bucket said wait; nothing was sent
        └── TerminalChannelError        retrying cannot help: 4xx, invalid item
            └── ChannelAuthError            the channel refused the credentials (401/403, a refused
                                            token refresh): the whole channel is disconnected

    TransientError, TerminalError   mixins, not NexusErrors: whether retrying can help

Transient versus terminal is decided by the mixin an error carries, so any error can say it
(a database or Redis outage wrapped in a `TransientError` subclass is retried like a 503);
the push worker never inspects status codes itself. Which HTTP status is which is decided in
one place, `nexus.channels.wire.classify_status`.
"""

from __future__ import annotations


class TransientError(Exception):
    """Mixin: the same request may succeed later. `retry_after` is the hint, in seconds."""

    retry_after: float | None = None


class TerminalError(Exception):
    """Mixin: repeating the same request cannot succeed; the work needs a person."""


class NexusError(Exception):
    """Base class of every error Nexus raises on purpose."""


class ConfigError(NexusError):
    def __init__(self, message: str, *, key: str | None = None, source: str | None = None) -> None:
        self.reason = message
        self.key = key
        self.source = source
        where = ", ".join(
            part for part in (f"file {source}" if source else "", f"key {key}" if key else "") if part
        )
        super().__init__(f"{message} ({where})" if where else message)


class InvalidArgumentError(NexusError, ValueError):
    """A value a public function does not accept; the message lists the valid ones. Also a
    ValueError, what such a mistake raised before."""


class SchemaError(NexusError):
    pass


class AddressInUseError(NexusError):
    pass


class UnknownDriverError(NexusError):
    pass


class UnknownChannelError(NexusError):
    pass


class UnknownSkuError(NexusError):
    pass


class UnknownBatchError(NexusError):
    pass


class BatchStrandedError(NexusError):
    pass


class UnknownConflictError(NexusError):
    pass


class DeadLetterError(NexusError):
    pass


class UnknownDeadLetterError(DeadLetterError):
    pass


class ChannelBlockedError(NexusError):
    """A channel is paused or disconnected: nothing is pushed to it now."""


class ListingBusyError(NexusError):
    pass


class WebhookError(NexusError):
    status_code = 400


class WebhookSignatureError(WebhookError):
    status_code = 401


class WebhookTooLargeError(WebhookError):
    status_code = 413


class WebhookPayloadError(WebhookError):
    status_code = 400


class ChannelError(NexusError):
    """A failed request to a channel. `status` is the HTTP status when there was one."""

    def __init__(self, message: str, *, status: int | None = None, payload: object = None) -> None:
        super().__init__(message)
        self.status = status
        self.payload = payload


class TransientChannelError(ChannelError, TransientError):
    """Try again later; `retry_after` (seconds) is the channel's own hint when it gave one."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        payload: object = None,
    ) -> None:
        super().__init__(message, status=status, payload=payload)
        self.retry_after = retry_after


class QuotaExhausted(TransientChannelError):
    """Our own bucket says the next request is far away (a daily quota is spent): reschedule."""


class TerminalChannelError(ChannelError, TerminalError):
    """Retrying the same request cannot succeed; the work goes to the dead-letter queue."""


class ChannelAuthError(TerminalChannelError):
    """The channel refused the credentials (HTTP 401/403, a refused token refresh): not one
    listing's fault but the channel's. The worker disconnects the channel instead of
    dead-lettering (`nexus.sync.channel_state`); pushes resume once a probe succeeds."""
