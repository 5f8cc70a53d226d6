"""One exception tree for the project.

Every error a user can cause derives from :class:`EventpipeError`; the CLI turns
it into one clear line and a non-zero exit code, never a traceback.
"""


class EventpipeError(Exception):
    """Base class: a problem the user can fix. The message says what and how."""

    exit_code = 2


class ConfigError(EventpipeError):
    """The settings file, an environment variable or a flag is invalid."""


class SourceError(EventpipeError):
    """A source path is missing, unreadable or lacks required columns."""


class WarehouseError(EventpipeError):
    """The warehouse folder is not usable (not a warehouse, unreadable, locked)."""


class WarehouseLockedError(WarehouseError):
    """Another eventpipe run holds the warehouse lock."""

    exit_code = 3


class QueryError(EventpipeError):
    """A query given to ``eventpipe query`` failed."""


class ResourceError(EventpipeError):
    """The run needed more memory or disk than it was given."""


class MissingTableError(EventpipeError):
    """A stage needs a table an earlier stage builds."""
