"""One default demo site per test session: generating and rendering it is the expensive part, so tests share it."""

from __future__ import annotations

import pytest

from crawlers.demo import DemoSite, generate_site, running_demo_site


@pytest.fixture(scope="session")
def site() -> DemoSite:
    return generate_site(articles=60, seed=0)


@pytest.fixture(scope="session")
def image_responses(site: DemoSite) -> dict[str, tuple[int, dict, bytes]]:
    """What the site answers for every truth image URL (renders every image once; the site caches them)."""
    return {t.image_url: site.response(t.image_url) for t in site.truth}


@pytest.fixture(scope="session")
def demo(site: DemoSite):
    with running_demo_site(site=site) as running:
        yield running
