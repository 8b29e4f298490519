"""The one error the results store raises for a problem a user can fix."""


class StoreError(RuntimeError):
    """The results store cannot be opened or used as asked."""
