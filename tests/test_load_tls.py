"""The load generator over TLS (``https://``), against real TLS servers on loopback.

Certificates come from private CAs made for the test (:mod:`trustme`); the
servers are :class:`tls_servers.TLSServer` on 127.0.0.1, port 0, answering
with canned bytes or terminating TLS in front of the paced
:class:`streamspec.testing.MockServer`. Both HTTP clients of the generator
(its own and aiohttp) and both event loops (asyncio's and, when installed,
uvloop's) go through the same checks: the records of complete streams, of
streams the server cut (with and without the TLS close alert), the server
name sent (SNI) and checked, and each way a certificate is refused, which
must fail the request with ``error_kind == "tls"`` and the reason, never
hang or raise.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import re
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import trustme

from streamspec import Error
from streamspec.cli import main
from streamspec.load import LoadConfig, RequestRecord, run_load, tls_context
from streamspec.load.generator import run
from streamspec.metrics import StreamMeter
from streamspec.testing import MockServer
from test_load_client import EVENTS, SPLITS, SSE, SSE_HEAD, chunked, head
from tls_servers import TLSServer, canned, in_thread, relay, server_context

LOOPS = ["asyncio", "uvloop"]
CLIENTS = ["streamspec", "aiohttp"]
LOCAL = ("localhost", "127.0.0.1")


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def drive(main: Callable[[], Awaitable[Any]], loop: str = "asyncio") -> Any:
    """Run ``main`` on a new event loop of the kind asked (skip if uvloop is missing)."""
    if loop == "uvloop":
        pytest.importorskip("uvloop")
    return run(main, use_uvloop=loop == "uvloop")


async def load(url: str, **options: Any) -> list[RequestRecord]:
    """The records of a load test of ``url`` (one slot, one request unless told)."""
    options = {"concurrency": 1, "num_requests": 1, "timeout": 30.0} | options
    config = LoadConfig(url=url, model="m", **options)
    return (await run_load(config)).records


def response(framing: str, body: bytes = SSE) -> bytes:
    if framing == "chunked":
        return head("200 OK", SSE_HEAD, "Transfer-Encoding: chunked") + chunked(body)
    if framing == "length":
        return head("200 OK", SSE_HEAD, f"Content-Length: {len(body)}") + body
    return head("200 OK", SSE_HEAD, "Connection: close") + body


def metered(payload: bytes) -> Any:
    """What a meter fed ``payload`` in one read measures (the reference for a cut stream)."""
    meter = StreamMeter()
    with contextlib.suppress(Error):
        meter.feed(payload)
    return meter.result()


def dechunk_prefix(data: bytes) -> bytes:
    """The payload a chunked body cut anywhere delivers (a partial chunk's bytes included)."""
    out, position = bytearray(), 0
    while (line_end := data.find(b"\r\n", position)) >= 0:
        size = int(data[position:line_end].split(b";")[0], 16)
        start = line_end + 2
        out += data[start : start + size]
        position = start + size + 2
        if size == 0 or position > len(data):
            break
    return bytes(out)


# -- complete streams -------------------------------------------------------------------------


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("client", CLIENTS)
def test_paced_streams_over_tls(ca: trustme.CA, ca_file: str, client: str, loop: str) -> None:
    """The paced mock behind a TLS front: every figure as over plain HTTP."""
    ttft, itl, tokens = 0.01, 0.002, 8

    mock = MockServer(ttft=ttft, itl=itl, tokens=tokens)

    async def main() -> tuple[list[RequestRecord], TLSServer]:
        async with TLSServer(server_context(ca, *LOCAL), relay(mock.port)) as front:
            records = await load(front.url, ca_file=ca_file, concurrency=3, num_requests=9,
                                 client=client)  # fmt: skip
        return records, front

    # The mock paces with asyncio's timers in a thread of its own, whatever the client's loop.
    with mock.run_in_thread():
        records, front = drive(main, loop)
    assert len(records) == len(mock.streams) == 9
    assert [stream.status for stream in mock.streams] == ["complete"] * 9
    for record in records:
        assert record.status == "complete", record.error
        assert (record.output_tokens, record.output_tokens_basis) == (tokens, "usage")
        assert record.token_chunks == tokens
        assert len(record.itl_ms) == tokens - 1
        assert record.ttft_ms is not None
        assert record.e2el_ms is not None
        # The mock sends token k no earlier than ttft + k * itl after reading the request.
        assert record.ttft_ms >= ttft * 1000
        assert record.e2el_ms >= (ttft + (tokens - 1) * itl) * 1000
        assert record.ttft_ms + sum(record.itl_ms) <= record.e2el_ms + 1e-6
    assert sorted(r.input_tokens or 0 for r in records) == sorted(
        s.prompt_tokens for s in mock.streams
    )
    assert front.server_names == [None] * front.connections  # an IP address: no SNI
    if client == "streamspec":
        assert front.connections == 3  # kept alive: one TLS handshake per slot


def test_legacy_completions_over_tls(ca: trustme.CA, ca_file: str) -> None:
    async def main() -> tuple[list[RequestRecord], MockServer]:
        async with MockServer(ttft=0.001, itl=0.001, tokens=5) as mock:
            front = TLSServer(server_context(ca, *LOCAL), relay(mock.port))
            async with front:
                records = await load(front.url, ca_file=ca_file, endpoint="completions",
                                     num_requests=3)  # fmt: skip
        return records, mock

    records, mock = drive(main)
    assert {stream.path for stream in mock.streams} == {"/v1/completions"}
    assert [(r.status, r.token_chunks, r.output_tokens) for r in records] == [
        ("complete", 5, 5)
    ] * 3


@pytest.mark.parametrize("split", list(SPLITS))
@pytest.mark.parametrize("framing", ["chunked", "length", "close"])
def test_every_framing_and_split_over_tls(
    ca: trustme.CA, ca_file: str, framing: str, split: str
) -> None:
    """Each write its own TLS record (one byte each, when split by bytes)."""
    ending = "close" if framing == "close" else "keep"

    async def main() -> tuple[list[RequestRecord], TLSServer]:
        handler = canned(response(framing), SPLITS[split], ending)
        async with TLSServer(server_context(ca, *LOCAL), handler) as server:
            return await load(server.url, ca_file=ca_file, num_requests=3), server

    records, server = drive(main)
    assert len(records) == 3
    for record in records:
        assert record.status == "complete", record.error
        assert (record.token_chunks, record.output_tokens, record.input_tokens) == (2, 2, 3)
        assert (record.chunks, len(record.itl_ms)) == (len(EVENTS), 1)
    assert server.connections == (3 if ending == "close" else 1)


# -- streams the server cuts --------------------------------------------------------------------


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("ending", ["close", "abrupt"])
@pytest.mark.parametrize("framing", ["chunked", "length"])
def test_cut_mid_stream(
    ca: trustme.CA, ca_file: str, framing: str, ending: str, client: str, loop: str
) -> None:
    """The server ends the connection halfway through the body, with the TLS close alert or
    without it: the request is truncated, and keeps exactly what arrived before the cut."""
    whole = response(framing)
    body_at = whole.index(b"\r\n\r\n") + 4
    cut = whole[: body_at + (len(whole) - body_at) // 2]
    delivered = cut[body_at:] if framing == "length" else dechunk_prefix(cut[body_at:])
    expected = metered(delivered)
    assert 0 < expected.token_chunks < 2  # the cut falls between the two tokens

    async def main() -> list[RequestRecord]:
        async with TLSServer(server_context(ca, *LOCAL), canned(cut, ending=ending)) as server:
            return await load(server.url, ca_file=ca_file, num_requests=2, client=client)

    records = drive(main, loop)
    for record in records:
        assert (record.status, record.error_kind) == ("truncated", "truncated")
        assert record.error is not None
        assert "the stream was cut" in record.error
        assert (record.token_chunks, record.chunks) == (expected.token_chunks, expected.chunks)
        assert record.ttft_ms is not None


def test_the_mock_cuts_streams_behind_tls(ca: trustme.CA, ca_file: str) -> None:
    """The paced mock cuts every second stream; the TLS front drops the connection then."""

    async def main() -> tuple[list[RequestRecord], MockServer]:
        async with MockServer(ttft=0.001, itl=0.001, tokens=6, truncate_every=2) as mock:
            front = TLSServer(server_context(ca, *LOCAL), relay(mock.port, "abrupt"))
            async with front:
                return await load(front.url, ca_file=ca_file, num_requests=4), mock

    records, mock = drive(main)
    assert [r.status for r in records] == ["complete", "truncated"] * 2
    assert [s.status for s in mock.streams] == ["complete", "truncated"] * 2
    cut = [r for r in records if r.status == "truncated"]
    assert all(r.token_chunks == 3 and r.error_kind == "truncated" for r in cut)


# -- names and certificates -------------------------------------------------------------------


def test_the_host_name_is_sent_and_checked(ca: trustme.CA, ca_file: str) -> None:
    heads: list[bytes] = []
    recording = canned(response("length"), heads=heads)

    async def main() -> tuple[list[RequestRecord], TLSServer]:
        async with TLSServer(server_context(ca, "localhost"), recording) as server:
            url = f"https://localhost:{server.port}/v1"
            return await load(url, ca_file=ca_file, num_requests=2), server

    records, server = drive(main)
    assert [r.status for r in records] == ["complete", "complete"]
    assert server.server_names == ["localhost"]  # SNI, one handshake for both requests
    hosts = [re.search(rb"\r\nHost: ([^\r]*)", h) for h in heads]
    assert [m.group(1) if m else None for m in hosts] == [b"localhost:%d" % server.port] * 2


# Certificates a verifying client must refuse: (issued for, how, the URL's host, the reason).
PAST = {
    "not_before": datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc),
    "not_after": datetime.datetime(2001, 1, 1, tzinfo=datetime.timezone.utc),
}
REFUSED = {
    "unknown CA": (LOCAL, {}, "127.0.0.1", None, "unable to get local issuer certificate"),
    "another CA": (LOCAL, {}, "127.0.0.1", "other", "unable to get local issuer certificate"),
    "IP not named": (("streamspec.test",), {}, "127.0.0.1", "ours", "IP address mismatch"),
    "name not named": (("streamspec.test",), {}, "localhost", "ours", "Hostname mismatch"),
    "expired": (LOCAL, PAST, "127.0.0.1", "ours", "certificate has expired"),
}


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("case", list(REFUSED))
def test_a_refused_certificate_fails_with_the_reason(
    ca: trustme.CA, ca_file: str, tmp_path: Path, case: str, client: str
) -> None:
    names, issue, host, trusted, reason = REFUSED[case]
    other = tmp_path / "other.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    trust = {None: None, "ours": ca_file, "other": str(other)}[trusted]

    async def main() -> tuple[list[RequestRecord], list[RequestRecord], TLSServer]:
        handler = canned(response("length"))
        async with TLSServer(server_context(ca, *names, **issue), handler) as server:
            url = f"https://{host}:{server.port}/v1"
            refused = await load(url, ca_file=trust, num_requests=3, client=client)
            accepted = await load(url, insecure=True, num_requests=2, client=client)
        return refused, accepted, server

    refused, accepted, server = drive(main)
    assert [(r.status, r.error_kind) for r in refused] == [("error", "tls")] * 3
    for record in refused:
        assert record.error is not None
        assert reason in record.error
        assert record.ttft_ms is None
        assert record.token_chunks == 0
        assert record.error.startswith(
            f"TLS: the certificate of {host}:{server.port} was not accepted: {reason}"
        )
        assert "--ca-file" in record.error
        assert "--insecure" in record.error
    # insecure: neither the certificate nor the name is checked; the stream goes through.
    assert [(r.status, r.token_chunks) for r in accepted] == [("complete", 2)] * 2


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("client", CLIENTS)
def test_https_to_a_plain_http_server(client: str, loop: str) -> None:
    """A plain server answers the TLS hello with an HTTP error, as web servers do."""

    async def main() -> list[RequestRecord]:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read(1)
            writer.write(head("400 Bad Request", "Content-Length: 0", "Connection: close"))
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            return await load(f"https://127.0.0.1:{port}/v1", num_requests=2, client=client)

    records = drive(main, loop)
    assert [(r.status, r.error_kind) for r in records] == [("error", "tls")] * 2
    assert all(r.error and "does not seem to speak TLS" in r.error for r in records)


def test_a_handshake_that_never_ends_times_out() -> None:
    """A server that takes the connection but never answers the TLS hello."""

    async def main() -> list[RequestRecord]:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read()  # until the client gives up and closes
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            return await load(f"https://127.0.0.1:{port}/v1", timeout=0.2)

    [record] = drive(main)
    assert (record.status, record.error_kind) == ("error", "timeout")
    assert record.error == "no connection and TLS handshake within 0.2 s"


def test_http_to_a_tls_server(ca: trustme.CA) -> None:
    async def main() -> tuple[list[RequestRecord], TLSServer]:
        async with TLSServer(server_context(ca, *LOCAL), canned(response("length"))) as server:
            url = f"http://127.0.0.1:{server.port}/v1"
            return await load(url, num_requests=2), server

    records, server = drive(main)
    assert [(r.status, r.error_kind) for r in records] == [("error", "connection")] * 2
    assert all(r.error == "the server closed the connection" for r in records)
    assert server.connections == 0  # no handshake ever completed


def test_a_client_certificate_through_ssl_context(ca: trustme.CA, ca_file: str) -> None:
    """mutual TLS: the server asks for a certificate its CA issued."""
    context = server_context(ca, *LOCAL)
    context.verify_mode = ssl.CERT_REQUIRED
    ca.configure_trust(context)
    with_certificate = tls_context(ca_file)
    ca.issue_cert("load-client@example.test").configure_cert(with_certificate)

    async def main() -> tuple[list[RequestRecord], list[RequestRecord]]:
        async with TLSServer(context, canned(response("length"))) as server:
            good = await load(server.url, ssl_context=with_certificate, num_requests=2)
            bad = await load(server.url, ca_file=ca_file)
        return good, bad

    good, bad = drive(main)
    assert [(r.status, r.token_chunks) for r in good] == [("complete", 2)] * 2
    [record] = bad  # TLS 1.3: the server refuses after the handshake and closes
    assert (record.status, record.error_kind) == ("error", "connection")


def test_tls_options_are_checked(ca_file: str, tmp_path: Path) -> None:
    not_pem = tmp_path / "notes.txt"
    not_pem.write_text("not a certificate\n")
    with pytest.raises(ValueError, match=r"CA file .*missing\.pem: No such file"):
        tls_context(str(tmp_path / "missing.pem"))
    with pytest.raises(ValueError, match=r"CA file .*notes\.txt: no PEM certificate"):
        tls_context(not_pem)
    with pytest.raises(ValueError, match="contradict"):
        tls_context(ca_file, insecure=True)
    url = "https://127.0.0.1:9/v1"
    given = ssl.create_default_context()
    with pytest.raises(ValueError, match="ssl_context alone"):
        LoadConfig(url=url, model="m", insecure=True, ssl_context=given).tls()
    assert LoadConfig(url=url, model="m", ssl_context=given).tls() is given
    with pytest.raises(ValueError, match="No such file"):
        drive(lambda: load(url, ca_file=str(tmp_path / "missing.pem")))
    strict = tls_context()
    assert (strict.verify_mode, strict.check_hostname) == (ssl.CERT_REQUIRED, True)
    loose = tls_context(insecure=True)
    assert (loose.verify_mode, loose.check_hostname) == (ssl.CERT_NONE, False)
    own = tls_context(ca_file)
    assert own.cert_store_stats()["x509_ca"] == 1  # the file's CA, not the system's


# -- the command line ---------------------------------------------------------------------------


def test_cli_https(ca: trustme.CA, ca_file: str, capsys: pytest.CaptureFixture[str]) -> None:
    async def setup(stack: contextlib.AsyncExitStack[Any]) -> TLSServer:
        server = TLSServer(server_context(ca, *LOCAL), canned(response("chunked")))
        return await stack.enter_async_context(server)

    with in_thread(setup) as server:
        url = server.url
        command = ["load", url, "--model", "m", "-c", "1", "-n", "2", "--no-uvloop"]
        assert main(command) == 1  # every request failed
        refused = capsys.readouterr()
        assert main([*command, "--allow-failures"]) == 0
        assert re.search(r"Failed requests: +2\n", capsys.readouterr().out)
        assert main([*command, "--ca-file", ca_file]) == 0
        trusted = capsys.readouterr()
        assert main([*command, "--insecure"]) == 0
        insecure = capsys.readouterr()
        assert main([*command, "-k"]) == 0
        short = capsys.readouterr()
    assert re.search(r"Failed requests: +2\n +tls: +2\n", refused.out)
    [line] = refused.err.splitlines()
    assert line.startswith(f"failed: tls (2): TLS: the certificate of 127.0.0.1:{server.port} ")
    assert "--ca-file" in line
    for output in (trusted, insecure, short):
        assert re.search(r"Successful requests: +2\nFailed requests: +0\n", output.out)
        assert output.err == ""


def test_cli_tls_usage_errors(ca_file: str, capsys: pytest.CaptureFixture[str]) -> None:
    command = ["load", "https://127.0.0.1:9/v1", "--model", "m", "-c", "1"]
    assert main([*command, "--ca-file", "/nonexistent/ca.pem"]) == 2
    assert "CA file /nonexistent/ca.pem: No such file or directory" in capsys.readouterr().err
    assert main([*command, "--ca-file", ca_file, "--insecure"]) == 2
    assert "not allowed with argument" in capsys.readouterr().err
    assert main(["load", "--help"]) == 0
    usage = capsys.readouterr().out
    assert "--ca-file PEM" in usage
    assert "-k, --insecure" in usage


def test_records_say_tls_in_json(ca: trustme.CA, tmp_path: Path) -> None:
    """The saved records carry the kind and the reason of a refused certificate."""

    async def setup(stack: contextlib.AsyncExitStack[Any]) -> TLSServer:
        server = TLSServer(server_context(ca, *LOCAL), canned(response("chunked")))
        return await stack.enter_async_context(server)

    saved = tmp_path / "records.jsonl"
    with in_thread(setup) as server:
        code = main(["load", server.url, "--model", "m", "-c", "1", "-n", "1",
                     "--no-uvloop", "--save-records", str(saved)])  # fmt: skip
    assert code == 1  # the request failed; its record is written all the same
    [record] = [json.loads(line) for line in saved.read_text().splitlines()]
    assert (record["status"], record["error_kind"]) == ("error", "tls")
    assert "unable to get local issuer certificate" in record["error"]
