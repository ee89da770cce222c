"""The one exception tree of skedge.

    SkedgeError                     base of everything skedge raises on purpose
    ├── SchemaError (ValueError)    an input row does not fit the model's schema: names row, field,
    │                               what was expected and what came
    ├── BundleError (ValueError)    a bundle or model file is missing, corrupt, tampered or unsupported
    ├── ConfigError (ValueError)    a training config is invalid: names the key, its place, the allowed values
    ├── DataError (ValueError)      a data file (training data, or rows to score) cannot be read
    │                               or does not fit its schema
    ├── GateError                   a quality gate was not met; nothing was written
    ├── ExportError                 a pipeline cannot be exported (unsupported step, unprovable parity)
    ├── ParityError                 an exported model does not answer like its reference
    └── EngineError                 a batch engine (Dask) cannot run a scoring job: the scheduler is
                                    unreachable, or workers kept dying on a task

The tree lives in the runtime because the runtime is the one package everything
else may import; it needs nothing but the standard library.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "SkedgeError",
    "SchemaError",
    "BundleError",
    "ConfigError",
    "DataError",
    "GateError",
    "ExportError",
    "ParityError",
    "EngineError",
]


class SkedgeError(Exception):
    """Base of every error skedge raises on purpose."""


class SchemaError(SkedgeError, ValueError):
    """An input row does not fit the model's schema."""

    def __init__(self, message: str, *, row: int | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.row = row
        self.field = field

    def __reduce__(self) -> tuple[Any, ...]:
        # Exceptions pickle as ``cls(*args)``, which would drop row and field when a Dask
        # worker sends the error back to the client.
        return (_schema_error, (str(self), self.row, self.field))


def _schema_error(message: str, row: int | None, field: str | None) -> SchemaError:
    return SchemaError(message, row=row, field=field)


class BundleError(SkedgeError, ValueError):
    """A bundle or model file is missing, corrupt, tampered with or unsupported."""


class ConfigError(SkedgeError, ValueError):
    """A training config is invalid."""


class DataError(SkedgeError, ValueError):
    """A data file (training data, or rows to score) cannot be read or does not fit the schema."""


class GateError(SkedgeError):
    """A quality gate was not met."""


class ExportError(SkedgeError):
    """A pipeline cannot be exported."""


class ParityError(SkedgeError):
    """An exported model does not answer like its reference."""


class EngineError(SkedgeError):
    """A batch engine (Dask) cannot run a scoring job."""
