"""How the memory store (`memory_store.py`) holds a document: its plain top-level values as
they are, its nested values pickled into one bytes object, its outbox one pickled entry each;
and how a stored entry is read back, a field looked up, a value indexed."""

from __future__ import annotations

import pickle
from typing import Any

from g60_chassis.store import Doc

ATOMIC = (str, int, float, bool, type(None))
BLOB = "\x00state"  # the key of a stored document's pickled nested values (no field is named so)
NESTED = "\x00nested"  # the names of its top-level values only in the blob, "\x00"-separated
# (a string, not a set: a set would be one more object for the garbage collector per document)
_OWN = (BLOB, NESTED, "outbox")  # the stored entry's own keys, not the document's
Outbox = tuple[bytes, ...]  # a stored document's outbox: one pickled entry each


def pack(doc: Doc, outbox: Outbox, version: int | None = None) -> Doc:
    """A document as the memory store holds it: its top-level plain values as they are (they
    are immutable: sharing them is a copy), its nested values pickled into one bytes object (a
    copy, and invisible to the garbage collector), and its outbox as one pickled entry each.
    Held as nested dicts, the stored matches were most of what a full garbage collection of the
    matching service's benchmark walked (371k objects; 141k with blobs, and 0.38x its CPU
    time). The plain values are not pickled too: a match's packed fields (`Aggregates(packed=)`)
    are long JSON strings, and pickling them again was most of its write (and its read).
    The entry holds nothing but immutable atomic values (the outbox a tuple of bytes, `()`
    when empty), so CPython never tracks it: the collector does not walk the stored documents
    at all (a list there made each of them one more object every full collection walked).
    `version`: stored as the document's version (its own, if any, left out: no copy of the
    document made to set it)."""
    stored: Doc = {k: v for k, v in doc.items() if isinstance(v, ATOMIC)}
    nested: Doc = {}
    if len(stored) < len(doc):  # an outbox, or a list or dict
        nested = {k: v for k, v in doc.items() if k not in stored and k != "outbox"}
    if version is not None:
        stored["version"] = version
    if nested:
        stored[BLOB] = pickle.dumps(nested, pickle.HIGHEST_PROTOCOL)
        stored[NESTED] = "\x00" + "".join(f"{k}\x00" for k in nested)
    else:
        stored[NESTED] = ""
    stored["outbox"] = outbox
    return stored


def entries(events: list[Doc] | None) -> Outbox:
    return tuple(pickle.dumps(e, pickle.HIGHEST_PROTOCOL) for e in events or ())


def read(stored: Doc, outbox: bool = True) -> Doc:
    """A stored document as a reader gets it: a fresh copy, its outbox included (unless not
    `outbox`: its entries, one pickled entry each, are then not unpickled)."""
    doc: Doc = {k: v for k, v in stored.items() if k not in _OWN}
    if BLOB in stored:
        doc.update(pickle.loads(stored[BLOB]))
    if outbox:
        doc["outbox"] = [pickle.loads(e) for e in stored["outbox"]]
    return doc


MISSING = object()


def field(stored: Doc, name: str, default: Any = None) -> Any:
    if name in stored:
        return stored[name]
    if f"\x00{name}\x00" in stored[NESTED]:  # a list or a dict: only in the blob
        return pickle.loads(stored[BLOB])[name]
    return default  # not a field of this document: nothing to unpickle


_HASHABLE = frozenset({str, int, bool, float, type(None)})


def key(value: Any) -> Any:
    """A hashable stand-in for an indexed value (lists and dicts compare as their repr)."""
    if type(value) in _HASHABLE:  # most indexed values: no call to `hash` to find out
        return value
    try:
        hash(value)
    except TypeError:
        return ("unhashable", repr(value))
    return value
