"""Base classes shared by every streamspec Struct.

Two families, one per direction of the wire:

* ``LenientStruct`` for what servers send (responses, stream chunks). Unknown
  keys are ignored, optional fields default to :data:`msgspec.UNSET` so that an
  absent key stays absent when the object is encoded again, and
  ``omit_defaults`` lets a few identity-compared sentinels (an absent ``delta``
  or ``choices``) vanish on re-encode while an explicit ``{}`` or ``[]`` is kept.
* ``StrictStruct`` for what clients send (requests). Enums are closed
  ``Literal`` types and required fields are required; decoding bad input raises
  :class:`msgspec.ValidationError` naming the JSON path.

Both set ``gc=False``: these objects are trees that never reference themselves,
so the cyclic garbage collector never has to visit them (decoding many chunks
that stay alive is markedly faster). Do not build reference cycles through them.
"""

from __future__ import annotations

import msgspec

__all__ = ["FrozenLenientStruct", "LenientStruct", "StrictStruct"]


class LenientStruct(msgspec.Struct, gc=False, omit_defaults=True):
    """Base for server-sent objects: unknown fields ignored, absent fields UNSET."""


class FrozenLenientStruct(msgspec.Struct, gc=False, omit_defaults=True, frozen=True):
    """A :class:`LenientStruct` that is immutable, so one instance can be a shared default."""


class StrictStruct(msgspec.Struct, gc=False):
    """Base for client-sent objects: closed enums, required fields enforced."""
