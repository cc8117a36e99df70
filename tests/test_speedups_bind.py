"""Each subclass of the compiled core calls ``feed()`` through a descriptor of its own.

CPython specializes the call of a C method (``decoder.feed(data)``) only when
the instance's type is exactly the type the method descriptor belongs to; with
``DecoderCore``'s own descriptor every ``ChunkDecoder.feed()`` took the generic
call path. ``streamspec._speedups.bind_methods`` gives ``ChunkDecoder`` and
each of its subclasses their own descriptors of the core's methods, unless a
class on the way defines the method in Python. These tests pin that rule, the
type check the descriptors keep, and that ``iterate()`` still takes its direct
path through a bound ``feed()`` (and calls a Python override by name).
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from streamspec import ChunkDecoder, iter_chunks
from streamspec._fastpath import IMPLEMENTATION, DecoderCore, bind_methods
from streamspec.iterate import iterate

if IMPLEMENTATION != "c":
    pytest.skip("the C accelerator is not built (or disabled)", allow_module_level=True)

CORE_METHODS = ("feed", "set_meter", "meter_times", "meter_itl")


def payload(i: int) -> bytes:
    return (
        b'data: {"id":"c%d","object":"chat.completion.chunk","created":1,"model":"m",'
        b'"choices":[{"index":0,"delta":{"content":"t\xc3\xa9"},"finish_reason":null}]}\n\n' % i
    )


READS = [payload(i) for i in range(4)] + [b"data: [DONE]\n\n"]


def ids(chunks: list[Any]) -> list[str]:
    return [chunk.id for chunk in chunks]


def feed_all(decoder: ChunkDecoder[Any]) -> list[Any]:
    chunks: list[Any] = []
    for data in READS:
        chunks += decoder.feed(data)
    return chunks + decoder.close()


class Sub(ChunkDecoder[Any]):
    pass


class Override(ChunkDecoder[Any]):
    calls = 0

    def feed(self, data: bytes) -> list[Any]:  # type: ignore[override]
        Override.calls += 1
        return self._feed(data)


class BelowOverride(Override):
    pass


@pytest.mark.parametrize("cls", [ChunkDecoder, Sub])
@pytest.mark.parametrize("name", CORE_METHODS)
def test_each_class_owns_its_core_descriptors(cls: type, name: str) -> None:
    descriptor = cls.__dict__[name]
    assert descriptor.__objclass__ is cls
    assert descriptor.__name__ == DecoderCore.__dict__[name].__name__


def test_a_bound_feed_decodes_as_the_core() -> None:
    expected = ["c0", "c1", "c2", "c3"]
    assert ids(feed_all(ChunkDecoder())) == expected
    decoder = Sub()
    assert ids(feed_all(decoder)) == expected
    assert decoder.done


def test_a_python_override_is_kept_below_it_too() -> None:
    assert inspect.isfunction(Override.__dict__["feed"])
    assert "feed" not in BelowOverride.__dict__
    assert BelowOverride.feed is Override.feed
    # the other core methods are still bound to each class
    assert BelowOverride.__dict__["set_meter"].__objclass__ is BelowOverride
    before = Override.calls
    assert ids(feed_all(BelowOverride())) == ["c0", "c1", "c2", "c3"]
    assert Override.calls - before == len(READS)


def test_iterate_calls_an_override_by_name_and_a_bound_feed_directly() -> None:
    before = Override.calls
    assert ids(list(iter_chunks(READS))) == ["c0", "c1", "c2", "c3"]
    assert ids(list(iterate(Sub(), READS))) == ["c0", "c1", "c2", "c3"]
    assert Override.calls == before
    assert ids(list(iterate(BelowOverride(), READS))) == ["c0", "c1", "c2", "c3"]
    assert Override.calls - before == len(READS)  # [DONE] ends it: close() is not a feed()


def test_a_descriptor_keeps_its_type_check() -> None:
    # Sub's feed() cannot be called on an instance that is not a Sub: the
    # function behind it reads the core's C struct.
    with pytest.raises(TypeError):
        Sub.__dict__["feed"](ChunkDecoder(), payload(0))
    with pytest.raises(TypeError):
        Sub.__dict__["feed"](object(), payload(0))
    assert ids(Sub.__dict__["feed"](BelowSub(), payload(7))) == ["c7"]


class BelowSub(Sub):
    pass


def test_bind_methods_is_idempotent_and_refuses_other_types() -> None:
    descriptor = Sub.__dict__["feed"]
    bind_methods(Sub)
    assert Sub.__dict__["feed"] is descriptor  # already its own: not replaced
    for bad in (object, int, Any, ChunkDecoder(), "feed", None):
        with pytest.raises(TypeError, match="subclass DecoderCore"):
            bind_methods(bad)  # type: ignore[arg-type]


def test_a_class_that_shadows_feed_later_keeps_what_it_set() -> None:
    class Late(ChunkDecoder[Any]):
        pass

    def feed(self: Any, data: bytes) -> list[Any]:
        return ["late"]

    Late.feed = feed  # type: ignore[method-assign,assignment]
    bind_methods(Late)
    assert Late().feed(payload(0)) == ["late"]
    del Late.feed  # back to ChunkDecoder's descriptor, rebound on request
    assert Late.feed is ChunkDecoder.__dict__["feed"]
    bind_methods(Late)
    assert Late.__dict__["feed"].__objclass__ is Late
    assert ids(Late().feed(payload(3))) == ["c3"]
