"""A local, deterministic news + social site for the demo and the tests: no test ever needs the internet.

    from crawlers.demo import generate_site, running_demo_site
    site = generate_site(articles=60, seed=0)
    with running_demo_site(articles=60, seed=0) as demo:
        demo.base_url, demo.truth, demo.requests

See crawlers/demo/README.md for the URL layout, the planted trouble and the ground-truth semantics.
"""

from crawlers.demo.server import RunningDemo, running_demo_site
from crawlers.demo.site import DemoSite, DemoSiteConfig, generate_site
from crawlers.demo.truth import PairTruth

__all__ = ["DemoSite", "DemoSiteConfig", "PairTruth", "RunningDemo", "generate_site", "running_demo_site"]
