"""The whole connection of an assistant, as the official MCP Python SDK makes it.

Run by the Rust integration test `assistants::python_sdk_*` against a real `qbo-mcp serve`:
discovery from the 401, registration (dynamic, or a Client ID Metadata Document URL),
sign-in and consent driven by an HTTP client with a cookie jar, the token exchange,
`tools/list` and `tools/call`, a refresh, and revocation. Prints one JSON line with what it saw;
any deviation raises (non-zero exit).

    python oauth_flow.py SERVER_URL USERNAME PASSWORD [--cimd DOCUMENT_URL]
"""

import argparse
import asyncio
import html
import json
import re
import sys
import time
from urllib.parse import parse_qs, urljoin, urlparse

import httpx
import httpx2
from mcp.client.auth import OAuthClientProvider, TokenStorage
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import (
    AuthorizationCodeResult,
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthToken,
)


class MemoryStorage(TokenStorage):
    def __init__(self):
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens):
        self.tokens = tokens

    async def get_client_info(self):
        return self.client_info

    async def set_client_info(self, client_info):
        self.client_info = client_info


def form_fields(page: str) -> dict[str, str]:
    """Every named input of the first form on a page, with its value."""
    fields = {}
    for tag in re.findall(r"<input[^>]*>", page):
        name = re.search(r'name="([^"]*)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if name:
            fields[html.unescape(name.group(1))] = html.unescape(value.group(1)) if value else ""
    return fields


class Person:
    """A browser: a cookie jar, no automatic redirects, every step checked."""

    def __init__(self, base: str, username: str, password: str):
        self.base = base
        self.username = username
        self.password = password
        self.http = httpx.AsyncClient(follow_redirects=False, timeout=30)
        self.consent_page = ""

    def url(self, location: str) -> str:
        return urljoin(self.base + "/", location)

    async def authorize(self, authorization_url: str) -> str:
        """Follows the authorization URL through sign-in and consent; returns the client's
        callback URL (with code, state and iss)."""
        r = await self.http.get(authorization_url)
        steps = []
        for _ in range(10):
            steps.append((r.request.method, str(r.request.url), r.status_code, r.headers.get("location")))
            if r.status_code in (302, 303):
                location = r.headers["location"]
                if location.startswith("http") and not location.startswith(self.base):
                    assert r.status_code in (302, 303), r.status_code
                    return location
                path = urlparse(location).path
                if path == "/login":
                    r = await self.sign_in(location)
                    continue
                r = await self.http.get(self.url(location))
                continue
            assert r.status_code == 200, (r.status_code, r.text[:500])
            page = r.text
            if 'name="decision"' in page:
                self.consent_page = page
                fields = form_fields(page)
                fields["decision"] = "allow"
                r = await self.http.post(self.url("/oauth/authorize"), data=fields)
                assert r.status_code == 303, ("consent must answer 303", r.status_code, r.text[:300])
                continue
            # Any other page on the way (e.g. onboarding): submit its own form as it is.
            here = r.request.url
            form = None
            for m in re.finditer(r'<form[^>]*action="([^"]*)"[^>]*>(.*?)</form>', page, re.S):
                if urlparse(html.unescape(m.group(1))).path == here.path:
                    form = m
            assert form, page[:800]
            r = await self.http.post(self.url(html.unescape(form.group(1))), data=form_fields(form.group(2)))
        raise AssertionError(f"too many steps between the authorization URL and the callback: {steps}")

    async def sign_in(self, login_location: str):
        page = await self.http.get(self.url(login_location))
        assert page.status_code == 200, page.status_code
        fields = form_fields(page.text)
        fields["username"] = self.username
        fields["password"] = self.password
        r = await self.http.post(self.url("/login"), data=fields)
        assert r.status_code == 303, ("sign-in failed", r.status_code, r.text[:300])
        return r


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("server")
    parser.add_argument("username")
    parser.add_argument("password")
    parser.add_argument("--cimd", help="use this Client ID Metadata Document URL as client_id")
    args = parser.parse_args()
    base = args.server.rstrip("/")
    mcp_url = base + "/mcp"
    report: dict = {}

    # Discovery starts with a 401 naming the resource metadata.
    async with httpx.AsyncClient() as raw:
        r = await raw.post(mcp_url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        assert r.status_code == 401, r.status_code
        assert "resource_metadata=" in r.headers["www-authenticate"]

    person = Person(base, args.username, args.password)
    callback: dict = {}

    async def redirect_handler(authorization_url: str) -> None:
        query = parse_qs(urlparse(authorization_url).query)
        report["authorization_request"] = {k: v[0] for k, v in query.items() if k != "code_challenge"}
        location = await person.authorize(authorization_url)
        callback.update({k: v[0] for k, v in parse_qs(urlparse(location).query).items()})
        callback["location"] = location

    async def callback_handler() -> AuthorizationCodeResult:
        assert "code" in callback, callback
        return AuthorizationCodeResult(code=callback["code"], state=callback.get("state"), iss=callback.get("iss"))

    storage = MemoryStorage()
    # A native client calling back on an ephemeral loopback port.
    metadata = OAuthClientMetadata(
        client_name="Python SDK assistant",
        redirect_uris=["http://127.0.0.1:43117/callback"],
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
        token_endpoint_auth_method="none",
    )
    provider = OAuthClientProvider(
        server_url=mcp_url,
        client_metadata=metadata,
        storage=storage,
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
    )
    if args.cimd:
        # The SDK insists on https for a metadata document URL; the test serves it on plain
        # http from 127.0.0.1 (the server allows that only under QBO_MCP_TEST_ALLOW_LOOPBACK_CIMD).
        provider.context.client_metadata_url = args.cimd

    async def session_round(http_client: httpx2.AsyncClient) -> list[str]:
        async with streamable_http_client(mcp_url, http_client=http_client) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                tools = await session.list_tools()
                names = [t.name for t in tools.tools]
                result = await session.call_tool("list_companies", {})
                assert not result.is_error, result
                report.setdefault("companies", result.structured_content)
                return names

    async with httpx2.AsyncClient(auth=provider, timeout=30) as http_client:
        report["tools"] = await session_round(http_client)
    report["client_id"] = storage.client_info.client_id if storage.client_info else None
    report["callback"] = {k: v for k, v in callback.items() if k != "code"}
    report["consent_page_names_client"] = "Python SDK assistant" in person.consent_page or (
        args.cimd is not None and "Metadata Document Assistant" in person.consent_page
    )
    report["consent_page_names_redirect_host"] = "127.0.0.1:43117" in person.consent_page
    first = storage.tokens
    assert first and first.refresh_token and first.access_token.startswith("qbo_at_")

    # Refresh: the SDK refreshes a token it believes expired, and the refresh token rotates.
    provider.context.token_expiry_time = time.time() - 1
    async with httpx2.AsyncClient(auth=provider, timeout=30) as http_client:
        await session_round(http_client)
    second = storage.tokens
    report["refreshed"] = second.access_token != first.access_token
    report["refresh_rotated"] = second.refresh_token != first.refresh_token

    # Revocation (RFC 7009) of the refresh token ends the grant: the access token stops working.
    async with httpx.AsyncClient() as raw:
        r = await raw.post(base + "/oauth/revoke", data={"token": second.refresh_token, "client_id": report["client_id"] or args.cimd})
        assert r.status_code == 200, r.status_code
        r = await raw.post(
            mcp_url,
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers={
                "authorization": f"Bearer {second.access_token}",
                "accept": "application/json, text/event-stream",
                "mcp-protocol-version": "2025-11-25",
            },
        )
        report["after_revocation_status"] = r.status_code
    print(json.dumps(report))


if __name__ == "__main__":
    asyncio.run(main())
