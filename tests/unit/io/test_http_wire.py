"""Pure HTTP/1.1 of the probes (agent/io/httpwire.py)."""

from __future__ import annotations

from agent.io.httpwire import Endpoint, Head, parse_chunk_size, parse_head, plan_endpoint


def test_the_request_is_the_smallest_correct_get() -> None:
    end = plan_endpoint("http://127.0.0.1:8080/health?deep=1", {"Authorization": "Bearer t"})
    assert end == Endpoint(
        False,
        "127.0.0.1",
        8080,
        b"GET /health?deep=1 HTTP/1.1\r\nhost: 127.0.0.1:8080\r\nuser-agent: ragops\r\n"
        b"accept: */*\r\nauthorization: Bearer t\r\n\r\n",
    )
    assert plan_endpoint("https://[::1]/", {}) == Endpoint(
        True,
        "::1",
        443,
        b"GET / HTTP/1.1\r\nhost: [::1]\r\nuser-agent: ragops\r\naccept: */*\r\n\r\n",
    )


def test_urls_and_headers_that_would_change_the_request_are_refused() -> None:
    assert plan_endpoint("ftp://h/x", {}) == "not an http(s) URL with a host"
    assert plan_endpoint("http://h:0/", {}) == "port 0 is out of range"
    assert "credentials" in str(plan_endpoint("http://u:p@h/", {}))
    assert "not a valid HTTP header" in str(plan_endpoint("http://h/", {"x": "a\r\nHost: e"}))
    assert "not a valid HTTP header" in str(plan_endpoint("http://h/", {"a b": "1"}))
    assert "spaces" in str(plan_endpoint("http://h/a b", {}))


def test_heads_are_framed_by_length_chunks_or_close() -> None:
    assert parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n") == Head(
        200, "length", 2, True
    )
    assert parse_head(b"HTTP/1.1 503 X\r\nTransfer-Encoding: chunked\r\n\r\n") == Head(
        503, "chunked", 0, True
    )
    assert parse_head(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n") == (
        Head(200, "length", 0, False)
    )
    assert parse_head(b"HTTP/1.0 200 OK\r\n\r\n") == Head(200, "close", 0, False)
    assert parse_head(b"HTTP/1.1 204 No Content\r\n\r\n") == Head(204, "none", 0, True)


def test_what_is_not_http_is_named() -> None:
    assert str(parse_head(b"SSH-2.0-OpenSSH\r\n\r\n")).startswith("not an HTTP/1.x response")
    assert str(parse_head(b"HTTP/1.1 2000 OK\r\n\r\n")).startswith("bad status code")
    assert str(parse_head(b"HTTP/1.1 200 OK\r\nnocolon\r\n\r\n")).startswith("bad header")
    bad_length = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n"
    assert str(parse_head(bad_length)).startswith("bad Content-Length")


def test_chunk_sizes_are_hex_with_extensions_ignored() -> None:
    assert parse_chunk_size(b"1a;name=v\r\n") == 26
    assert parse_chunk_size(b"zz\r\n") is None
    assert parse_chunk_size(b"\r\n") is None
