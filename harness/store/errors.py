"""The errors the results store raises for a problem a user can fix (each is a usage error: exit 4)."""


class StoreError(RuntimeError):
    """The results store cannot be opened or used as asked."""


class LeaseTimeoutError(StoreError):
    """Another run still held the bench's lease when the wait ran out; the message names that holder."""


class LeaseLostError(StoreError):
    """This run's bench lease expired or was taken over (its heartbeat stopped for longer than the TTL)."""
