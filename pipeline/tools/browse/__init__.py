"""`mmpipe browse`: a local web app over a CLEAN dataset (its shards, dropped rows and dedup index), DuckDB doing
the queries.  `create_app` builds it, `browse` serves it; an `ImageSearch` (built by the caller from a model: this
package never imports training) adds text-to-image search and "more like this"."""

from pipeline.tools.browse.app import CSP, browse, create_app
from pipeline.tools.browse.query import DatasetQueries, Filters, SqlResult
from pipeline.tools.browse.search import ImageSearch

__all__ = ["CSP", "DatasetQueries", "Filters", "ImageSearch", "SqlResult", "browse", "create_app"]
