"""User payloads to bytes and back: msgspec JSON, with a format id in front.

The first byte of every payload names its format, so later formats (a codec
chain with compression and encryption, an opt-in pickle) can be told apart and
old payloads stay readable. Decoding takes the type the user's code declared
(a parameter or return annotation), so dataclasses, msgspec Structs,
datetimes, UUIDs and bytes come back as themselves.
"""

from __future__ import annotations

import inspect
import traceback as tb
from typing import Any

import msgspec

from perdure._model.errors import InvalidState

JSON = b"J"
_encoder = msgspec.json.Encoder(order="deterministic")
PayloadDecoder = msgspec.json.Decoder[Any]
_decoders: dict[Any, PayloadDecoder] = {}


class ErrorInfo(msgspec.Struct, frozen=True):
    """An exception as recorded: its type's qualified name, message and traceback."""

    type: str
    message: str
    traceback: str = ""


def encode(value: object) -> bytes:
    """Encode ``value``; raises ``TypeError`` (or ``OverflowError``) naming what failed."""
    return JSON + _encoder.encode(value)


def decode(data: bytes, type: Any = Any) -> Any:  # noqa: A002 - mirrors msgspec's keyword
    """Decode a payload made by ``encode``, as ``type`` when given."""
    if data[:1] != JSON:
        raise ValueError(f"unknown payload format {data[:1]!r}; was it written by a newer perdure?")
    dec = _decoders.get(type)
    if dec is None:
        dec = decoder(type)
    return dec.decode(data[1:])


def decode_output(data: bytes | None, type: Any, what: str) -> Any:  # noqa: A002 - as decode
    """What ``what`` returned (``data``, None if nothing), as the current code's return
    annotation ``type`` says; a value that no longer fits it (the code changed since it
    was recorded) is an ``InvalidState`` that says so, not a bare validation error."""
    try:
        return decode(data or encode(None), type)
    except msgspec.ValidationError as exc:
        raise InvalidState(
            f"{what} returned a value that does not fit the return annotation of the current "
            f"code ({exc}); was the annotation changed after it ended?"
        ) from None


def decoder(type: Any = Any) -> PayloadDecoder:  # noqa: A002 - mirrors msgspec's keyword
    """What ``decode(data, type)`` uses, to keep for many payloads of one type (see ``decode_with``)."""
    dec = _decoders.get(type)
    if dec is None:
        try:
            dec = _decoders[type] = msgspec.json.Decoder(type)
        except TypeError:  # an annotation msgspec cannot decode into: plain JSON
            dec = _decoders[type] = msgspec.json.Decoder()
    return dec


def decode_with(dec: PayloadDecoder, data: bytes) -> Any:
    """``decode(data, type)`` with ``dec = decoder(type)`` looked up once.

    Hot loops may inline it: ``dec.decode(data[1:]) if data[:1] == JSON else decode_with(dec, data)``.
    """
    if data[:1] != JSON:
        raise ValueError(f"unknown payload format {data[:1]!r}; was it written by a newer perdure?")
    return dec.decode(data[1:])


def encode_error(exc: BaseException) -> bytes:
    cls = type(exc)
    name = cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    text = "".join(tb.format_exception(exc))
    return encode(ErrorInfo(type=name, message=str(exc), traceback=text))


def decode_error(data: bytes) -> ErrorInfo:
    info: ErrorInfo = decode(data, ErrorInfo)
    return info


_input_types: dict[int, tuple[inspect.Signature, type[msgspec.Struct]]] = {}


def encode_input(arguments: dict[str, Any]) -> bytes:
    """Encode bound call arguments (name to value), in signature order."""
    return encode(arguments)


def decode_input(signature: inspect.Signature, hints: dict[str, Any], data: bytes) -> dict[str, Any]:
    """Decode arguments made by ``encode_input``, each as its parameter's annotated type."""
    cached = _input_types.get(id(signature))
    if cached is None or cached[0] is not signature:
        fields: list[tuple[str, Any, Any]] = []
        for name, param in signature.parameters.items():
            hint = hints.get(name, Any)
            if param.kind is inspect.Parameter.VAR_POSITIONAL:
                hint = tuple[hint, ...]  # type: ignore[valid-type]
            elif param.kind is inspect.Parameter.VAR_KEYWORD:
                hint = dict[str, hint]  # type: ignore[valid-type]
            fields.append((name, hint | msgspec.UnsetType, msgspec.UNSET))
        try:
            struct = msgspec.defstruct("Arguments", fields, forbid_unknown_fields=True)
            msgspec.json.Decoder(struct)
        except TypeError:  # an annotation msgspec cannot decode into: plain JSON values
            struct = msgspec.defstruct("Arguments", [(n, Any, msgspec.UNSET) for n, _, _ in fields])
        cached = _input_types[id(signature)] = (signature, struct)
    decoded = decode(data, cached[1])
    return {
        name: value for name in signature.parameters if (value := getattr(decoded, name)) is not msgspec.UNSET
    }
