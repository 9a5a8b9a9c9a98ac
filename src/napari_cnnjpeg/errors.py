"""The one exception type raised for every bad input."""


class CjpgError(ValueError):
    """Bad input: corrupt or truncated file, unknown model, unsupported data, ..."""
