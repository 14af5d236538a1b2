"""User-facing errors: the CLI prints their message on one line and exits non-zero."""


class PrismError(Exception):
    """An error caused by user input; the message names the problem and the fix."""


class BitsFormatError(PrismError):
    """A .bits file is truncated, corrupted or of an unknown format."""


class SeedMismatchError(PrismError):
    """The seed given does not match the fingerprint stored with the mask."""


class ArchitectureMismatchError(PrismError):
    """The mask's layer sizes do not match the architecture."""


class DataError(PrismError):
    """A dataset is missing, empty or fails its checksum."""
