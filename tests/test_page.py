"""The page at `/` is served whole by this server: every asset it names is here, none is fetched
from elsewhere (an offline server reaches no CDN). Its behaviour in a browser: test_e2e_page.py."""

from __future__ import annotations

import re

import httpx

from tests.conftest import AppFactory, running_app

ASSET = re.compile(r"""(?:src|href)="([^"]+)"|addModule\("([^"]+)"\)""")


async def test_the_page_and_every_asset_it_names_come_from_this_server(fake_client: httpx.AsyncClient) -> None:
    page = await fake_client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "ws://test" in policy
    assert '<option value="fr">French</option>' in page.text and "<!--LANGUAGES-->" not in page.text

    names = [a or b for a, b in ASSET.findall(page.text)]
    script = await fake_client.get("/page/page.js")
    names += [a or b for a, b in ASSET.findall(script.text)]
    assert {"/page/page.css", "/page/page.js", "/page/mic-worklet.js", "/docs"} <= set(names)
    for name in names:
        assert name.startswith("/"), f"{name} is not served by this server"
        response = await fake_client.get(name)
        assert response.status_code == 200, name
        assert not re.search(r"""["'(]\s*(https?:)?//""", response.text), f"{name} loads something from elsewhere"
    assert script.headers["content-type"].startswith("text/javascript")  # a module script needs it


async def test_a_missing_asset_is_an_openai_error(fake_client: httpx.AsyncClient) -> None:
    response = await fake_client.get("/page/nothing.js")
    assert response.status_code == 404 and response.json()["error"]["type"] == "invalid_request_error"


async def test_the_page_is_public_when_the_api_is_not(make_fake_app: AppFactory) -> None:
    async with running_app(make_fake_app(api_keys="k")) as client:
        assert (await client.get("/")).status_code == 200
        assert (await client.get("/page/page.js")).status_code == 200
        assert (await client.get("/v1/models")).status_code == 401
