"""Scrapy spiders, one per source kind; `SPIDERS` maps a `SourceConfig.kind` to its class path."""

SPIDERS = {"news": "crawlers.spiders.news.NewsSpider", "feed": "crawlers.spiders.social.FeedSpider",
           "mastodon": "crawlers.spiders.social.MastodonSpider", "bluesky": "crawlers.spiders.social.BlueskySpider",
           "urls": "crawlers.spiders.urllist.UrlListSpider", "warc": "crawlers.spiders.warc.WarcSpider"}
