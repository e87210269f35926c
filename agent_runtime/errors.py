"""The one error type a misconfigured agent produces: a single line naming the field or variable."""


class ConfigError(Exception):
    """Invalid configuration or a missing credential, detected before connecting anywhere."""
