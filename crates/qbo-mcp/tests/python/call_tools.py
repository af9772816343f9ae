"""Calls MCP tools through the official Python SDK (PyPI `mcp`) with a bearer token, in one
session: `call_tools.py MCP_URL TOKEN CALLS_JSON`, where CALLS_JSON is
`[{"name": …, "arguments": {…}}, …]`. Prints one JSON line: a list of
`{"is_error", "structured", "text"}`, one per call, in order."""

import asyncio
import json
import sys

import httpx2
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client


async def main() -> None:
    url, token, calls = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    results = []
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx2.AsyncClient(headers=headers, timeout=60) as http_client:
        async with streamable_http_client(url, http_client=http_client) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                for call in calls:
                    r = await session.call_tool(call["name"], call.get("arguments", {}))
                    results.append(
                        {
                            "is_error": bool(r.is_error),
                            "structured": r.structured_content,
                            "text": " ".join(getattr(c, "text", "") for c in r.content),
                        }
                    )
    print(json.dumps(results))


asyncio.run(main())
