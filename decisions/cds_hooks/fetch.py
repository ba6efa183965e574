"""Fetching what the prefetch did not bring from the EHR's FHIR server (`fhirServer`).

A hook call names a FHIR server and hands us a bearer token for it, so an unchecked fetch would
let a caller aim the server (and the token) at any address, including our own database port.
Hence, in this order:

- **allow-list**: only a base URL listed for the caller is fetched (per trusted issuer, or
  CDS_HOOKS_FHIR_SERVERS with JWT verification off); https only unless DEBUG;
- **addresses**: the host is resolved once and we connect to the address we checked; private,
  loopback, link-local and other non-public addresses are refused unless the listed base itself
  names that address (or `localhost`), as a test EHR on loopback does;
- **one deadline**: every query of a call runs in parallel, and all of them together stop at
  CDS_HOOKS_FHIR_TIMEOUT_SECONDS, whatever the server does (a server dripping one byte at a
  time is cut off at the deadline, not per socket read); a size limit; no redirects (a redirect
  would carry the bearer token to another host);
- **one failure text**: whatever went wrong, the caller is told the same thing (`FAILED`), so the
  service cannot be used to tell "connection refused" from "not JSON" on someone's network;
  the details go to the log, never the token.

Only the queries of the service's own prefetch templates are sent, with the patient id quoted
into them. The client is httpcore (the transport under httpx) on anyio: its network backend is the
one documented place to resolve and check an address before connecting.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ipaddress
import json
import logging
import socket
import ssl
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import anyio
import anyio.to_thread
import httpcore

from decisions.cds_hooks.common import BadRequest, DataUnavailable, normalise_base
from decisions.cds_hooks.request import RECORD_TYPES, FhirAccess, Record, bundle_resources, fhir_problem

logger = logging.getLogger(__name__)

# The one answer a caller gets for any failure to read the Patient (HTTP 412), and the one note
# for a search that could not be read.
FAILED = "the patient's record could not be read from the EHR's FHIR server (fhirServer)"
SEARCH_FAILED = "could not be read from the EHR's FHIR server: not used."
NOT_LISTED = (
    "fhirServer {server} is not a FHIR server this service may read for this caller: nothing was "
    "fetched from it, and only the prefetched data was used."
)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class FetchLimits:
    timeout_seconds: float = 5.0  # for all the fetches of one call together
    max_bytes: int = 2_000_000


class FetchFailed(Exception):
    """One query could not be answered; the message is for the log only (never the token)."""


@dataclass(frozen=True)
class AddressPolicy:
    """Which addresses a fetch may connect to: public ones, plus what the listed base names."""

    exempt: frozenset[IPAddress] = frozenset()
    loopback: bool = False

    @classmethod
    def for_base(cls, base: str) -> AddressPolicy:
        host = urllib.parse.urlsplit(base).hostname or ""
        if host == "localhost":
            return cls(loopback=True)
        try:
            return cls(exempt=frozenset({ipaddress.ip_address(host)}))
        except ValueError:
            return cls()

    def allows(self, address: IPAddress) -> bool:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
        if address in self.exempt or (self.loopback and address.is_loopback):
            return True
        return address.is_global and not address.is_multicast


def permitted_base(server: str, listed: Iterable[str], *, allow_http: bool) -> str | None:
    """The listed base URL that `server` is, or None: then it must not be fetched."""
    try:
        wanted = normalise_base(server)
    except ValueError:
        return None
    if not allow_http and not wanted.startswith("https://"):
        return None
    for base in listed:
        try:
            if normalise_base(base) == wanted:
                return wanted
        except ValueError:
            continue  # refused at start-up in production (settings); ignored here
    return None


class _CheckedBackend(httpcore.AsyncNetworkBackend):
    """anyio's backend, but the host is resolved here and only an allowed address is connected.

    Connecting to the very address that was checked closes the DNS-rebinding gap of "resolve,
    check, then let the library resolve again". TLS still verifies the certificate against the
    URL's host name (httpcore passes it as server_hostname).
    """

    def __init__(self, policy: AddressPolicy) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._policy = policy

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            # Abandoned on cancel: a resolver that hangs cannot hold the call past its deadline.
            infos = await anyio.to_thread.run_sync(
                socket.getaddrinfo, host, port, 0, socket.SOCK_STREAM, abandon_on_cancel=True
            )
        except OSError as error:
            raise httpcore.ConnectError(f"{host} could not be resolved ({error})") from None
        addresses = list(dict.fromkeys(str(info[4][0]).split("%")[0] for info in infos))
        allowed = [a for a in addresses if self._policy.allows(ipaddress.ip_address(a))]
        if not allowed:
            raise httpcore.ConnectError(
                f"{host} resolves only to addresses that are not allowed: {addresses}"
            )
        failures: list[str] = []
        for address in allowed:
            try:
                return await self._inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as failure:
                failures.append(f"{address} port {port}: {type(failure).__name__} {failure}")
        raise httpcore.ConnectError("; ".join(failures))

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are never used")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


async def _get_json(
    pool: httpcore.AsyncConnectionPool, url: str, token: str, limits: FetchLimits
) -> Mapping[str, Any]:
    headers = [(b"Accept", b"application/fhir+json"), (b"Authorization", f"Bearer {token}".encode())]
    timeout = limits.timeout_seconds  # each step; the call's deadline (a cancel scope) caps them all
    extensions = {"timeout": {"connect": timeout, "read": timeout, "write": timeout, "pool": timeout}}
    body = bytearray()
    async with pool.stream("GET", url, headers=headers, extensions=extensions) as response:
        if response.status != 200:
            raise FetchFailed(f"answered {response.status}")
        async for chunk in response.aiter_stream():
            body += chunk
            if len(body) > limits.max_bytes:
                raise FetchFailed(f"answered more than {limits.max_bytes} bytes")
    try:
        data = json.loads(bytes(body))
    except (UnicodeDecodeError, ValueError):
        raise FetchFailed("answered something that is not JSON") from None
    if not isinstance(data, dict):
        raise FetchFailed("answered JSON that is not a FHIR resource")
    return data


def _run(coroutine_function: Any) -> Any:
    """anyio.run, in a thread of its own if this thread already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return anyio.run(coroutine_function)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as executor:
        return executor.submit(anyio.run, coroutine_function).result()


def fetch_all(
    access: FhirAccess,
    queries: Mapping[str, str],
    limits: FetchLimits,
    policy: AddressPolicy,
    *,
    ssl_context: ssl.SSLContext | None = None,
) -> dict[str, Mapping[str, Any] | FetchFailed]:
    """Each query's JSON, or why it failed; all in parallel, all within limits.timeout_seconds."""
    results: dict[str, Mapping[str, Any] | FetchFailed] = {}

    async def one(pool: httpcore.AsyncConnectionPool, key: str, query: str) -> None:
        try:
            results[key] = await _get_json(pool, f"{access.server}/{query}", access.access_token, limits)
        except FetchFailed as error:
            results[key] = error
        except (httpcore.TimeoutException, TimeoutError):
            results[key] = FetchFailed("did not answer in time")
        except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.UnsupportedProtocol) as error:
            results[key] = FetchFailed(f"could not be reached ({type(error).__name__}: {error})")
        except (OSError, ssl.SSLError, ValueError) as error:
            results[key] = FetchFailed(f"could not be reached ({type(error).__name__})")

    async def main() -> None:
        with anyio.move_on_after(limits.timeout_seconds):
            async with (
                httpcore.AsyncConnectionPool(
                    ssl_context=ssl_context, network_backend=_CheckedBackend(policy), retries=0
                ) as pool,
                anyio.create_task_group() as group,
            ):
                for key, query in queries.items():
                    group.start_soon(one, pool, key, query)

    _run(main)
    for key in queries:
        results.setdefault(key, FetchFailed(f"gave no complete answer within {limits.timeout_seconds} s"))
    return results


def query_for(template: str, patient_id: str) -> str:
    return template.replace("{{context.patientId}}", urllib.parse.quote(patient_id, safe=""))


def fill_record(
    record: Record,
    access: FhirAccess,
    patient_id: str,
    templates: Mapping[str, str],
    limits: FetchLimits,
    skipped: list[str],
    *,
    listed: Sequence[str],
    allow_http: bool,
    ssl_context: ssl.SSLContext | None = None,
) -> Record:
    """The record with each missing prefetch key that has a template fetched from the FHIR server.

    A fhirServer that is not listed for the caller is not fetched at all: the record stays as
    prefetched and a note says so. Only the first page of a search is read (enough for a
    patient's problem list here); a next page is reported as not read. Without the Patient
    nothing can be routed, so a failure to get it raises DataUnavailable(FAILED) (the caller
    answers 412); a failed search is noted and left missing.
    """
    base = permitted_base(access.server, listed, allow_http=allow_http)
    if base is None:
        logger.warning("CDS Hooks: fhirServer %r is not listed for this caller: not fetched", access.server)
        skipped.append(NOT_LISTED.format(server=access.server))
        return record
    queries = {
        key: query_for(templates[key], patient_id)
        for key in record.missing()
        if templates.get(key) is not None
    }
    if not queries:
        return record
    answers = fetch_all(
        replace(access, server=base), queries, limits, AddressPolicy.for_base(base), ssl_context=ssl_context
    )
    fetched: dict[str, Any] = {}
    for key, query in queries.items():
        data = answers[key]
        path = query.split("?")[0]
        if isinstance(data, FetchFailed):
            logger.warning("CDS Hooks: the FHIR server at %s %s for %s", base, data, path)
            if key == "patient":
                raise DataUnavailable(FAILED)
            skipped.append(f"{query}: {SEARCH_FAILED}")
            continue
        logger.info("CDS Hooks: fetched %s from the EHR's FHIR server", path)
        if key == "patient":
            if data.get("resourceType") != "Patient" or fhir_problem(data) is not None:
                logger.warning("CDS Hooks: the FHIR server's answer to %s is not a valid Patient", path)
                raise DataUnavailable(FAILED)
            if data.get("id") not in (None, patient_id):
                logger.warning("CDS Hooks: the FHIR server's answer to %s is another patient", path)
                raise DataUnavailable(FAILED)
            fetched[key] = data
            continue
        try:
            fetched[key] = bundle_resources(data, query, frozenset({RECORD_TYPES[key]}), skipped)
        except BadRequest:
            logger.warning("CDS Hooks: the FHIR server's answer to %s is not a Bundle", path)
            skipped.append(f"{query}: {SEARCH_FAILED}")
            continue
        links = data.get("link")
        if isinstance(links, list) and any(
            isinstance(link, dict) and link.get("relation") == "next" for link in links
        ):
            skipped.append(f"{query}: only the first page of results was read.")
    return replace(record, **fetched)
