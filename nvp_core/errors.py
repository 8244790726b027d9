"""One exception family so callers (the explorer, the CLI) can catch ours and show them."""


class NVPError(Exception):
    """Base of every error nvp_core raises on purpose."""


class ConfigError(NVPError, ValueError):
    """A FlowConfig value or JSON document is invalid; the message names the field."""


class ModelFileError(NVPError):
    """A weights file is missing, truncated, not ours, a pickle, or does not fit its config."""


class ShapeError(NVPError, ValueError):
    """An image or latent has a shape the flow cannot take (e.g. side not a multiple of 2^(L-1))."""


class DataError(NVPError):
    """A data set cannot be used: empty folder, no readable images, missing optional packages."""


class TrainingError(NVPError):
    """Training cannot go on: a non-finite loss, a bad checkpoint to resume from."""


class Cancelled(NVPError):
    """Work stopped on request (a Cancel button, a newer request replacing this one).

    The one cancellation signal of the package: :mod:`nvp_core.pipeline` raises it
    when its ``cancel()`` callable says so, and a ``progress`` callback may raise it
    to stop the work at the next step; the explorer's render worker catches it.
    """
