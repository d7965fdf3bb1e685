"""Unit tests of stream/proxy.py: transparency, laziness and pickling of proxies over inline objects.

Inline objects (the ones that travel inside their event) resolve without Kafka or a store, so these tests
need no services; resolution from a store is covered by the integration tests.
"""

from __future__ import annotations

import json
import pickle
import threading

import pytest

from freight.stream.proxy import Proxy, ProxyRef, extract, is_resolved, ref_of


def _ref(obj: object, *, serializer: str = "json", offset: int = 7) -> ProxyRef:
    data = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    return ProxyRef(
        topic="t-proxy",
        partition=2,
        offset=offset,
        stream="s",
        sequence=3,
        serializer=serializer,
        inline=data,
    )


def test_unresolved_until_used_and_repr_names_the_coordinates() -> None:
    p = Proxy(_ref([1, 2, 3]))
    assert not is_resolved(p)
    text = repr(p)
    assert "unresolved" in text and "topic 't-proxy' partition 2 offset 7" in text and "s#3" in text
    assert not is_resolved(p)  # repr does not fetch
    assert len(p) == 3
    assert is_resolved(p)
    assert repr(p) == "[1, 2, 3]"


def test_acts_as_its_object() -> None:
    p = Proxy(_ref([10, 20, 30]))
    assert isinstance(p, list)
    assert p[1] == 20 and 30 in p and list(iter(p)) == [10, 20, 30]
    assert p == [10, 20, 30] and p != [1]
    assert extract(p) == [10, 20, 30] and type(extract(p)) is list


def test_operators_forward_and_reflect() -> None:
    n = Proxy(_ref(6))
    assert n + 1 == 7 and 1 + n == 7
    assert n * 2 == 12 and 12 / n == 2
    assert n - 1 == 5 and 10 - n == 4
    assert -n == -6 and abs(Proxy(_ref(-2))) == 2
    assert n < 7 and n >= 6 and int(n) == 6 and float(n) == 6.0
    assert hash(n) == hash(6) and bool(Proxy(_ref(0))) is False


def test_bytes_inline_object() -> None:
    p = Proxy(_ref(b"payload", serializer="bytes"))
    assert bytes(p) == b"payload"
    assert memoryview(extract(p)).tobytes() == b"payload"


def test_pickle_ships_the_reference_not_the_object() -> None:
    big = list(range(5000))
    p = Proxy(_ref(big))
    len(p)  # resolved in this process
    blob = pickle.dumps(p)
    q = pickle.loads(blob)
    assert not is_resolved(q)  # the receiver fetches on its own
    assert ref_of(q) == ref_of(p)
    assert q == big


def test_pickled_stored_ref_is_small() -> None:
    ref = ProxyRef(
        topic="t", partition=0, offset=1, stream="s", sequence=0, serializer="numpy", store="st", key="k" * 40
    )
    blob = pickle.dumps(Proxy(ref))
    assert len(blob) < 1024
    assert ref_of(pickle.loads(blob)) == ref


def test_copy_is_an_unresolved_proxy_of_the_same_ref() -> None:
    import copy

    p = Proxy(_ref({"a": 1}))
    assert p["a"] == 1
    c = copy.copy(p)
    assert ref_of(c) is ref_of(p) and not is_resolved(c)
    assert c == {"a": 1}


def test_concurrent_first_use_resolves_to_one_object() -> None:
    p = Proxy(_ref({"k": list(range(100))}))
    seen: list[int] = []
    barrier = threading.Barrier(8)

    def use() -> None:
        barrier.wait()
        seen.append(id(extract(p)))

    threads = [threading.Thread(target=use) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(seen)) == 1


def test_attribute_access_reaches_the_object() -> None:
    p = Proxy(_ref({"x": 1}))
    with pytest.raises(AttributeError):
        p.no_such_attribute  # noqa: B018
    assert p.get("x") == 1


def test_where_names_the_event() -> None:
    assert _ref(1).where() == "topic 't-proxy' partition 2 offset 7"
