"""The shared vocabulary of drop reasons.

The demo site's ground truth, the crawl summary and the clean manifest's funnel all use these names, so tests can
compare them key by key.  A reason says *why* a candidate pair is not in the dataset; add new ones here, never as
free text in a stage.
"""

# Crawl stage: the candidate never becomes a RAW row; counted in the crawl summary (`drops`).
ROBOTS_DISALLOWED = "robots_disallowed"  # page URL disallowed by robots.txt (never fetched)
ROBOTS_UNREACHABLE = "robots_unreachable"  # robots.txt answered 5xx or timed out: host disallowed (RFC 9309)
OPT_OUT_PAGE = "opt_out_page"  # page: X-Robots-Tag or <meta name=robots> with noai / noimageai
OPT_OUT_IMAGE = "opt_out_image"  # image response: X-Robots-Tag noai / noimageai
OPT_OUT_TDMREP = "opt_out_tdmrep"  # tdm-reservation header or /.well-known/tdmrep.json reservation
SOCIAL_SENSITIVE = "social_sensitive"  # media marked sensitive
SOCIAL_NOINDEX = "social_noindex"  # Mastodon account with noindex
SOCIAL_NO_UNAUTHENTICATED = "social_no_unauthenticated"  # Bluesky author labelled !no-unauthenticated
BLOCKLISTED_URL = "blocklisted"  # page or image URL / domain on the dataset's takedown blocklist
TEASER_IMAGE = "teaser_image"  # a picture shown as a teaser of another page (it links there): not this page's pair
SOCIAL_BAD_POST = "social_bad_post"  # an API post with a field of an unexpected type: that post only is skipped
SOCIAL_BAD_RESPONSE = "social_bad_response"  # an API page that cannot be read at all (e.g. JSON nested too deep)
# URL lists and web archives (`kind: urls` / `kind: warc`): an input row or record that cannot be a pair; the
# crawl summary's `input_rejects` names the file and row of each (the first thousand)
LIST_MISSING_URL = "list_missing_url"  # no value in the URL column
LIST_BAD_URL = "list_bad_url"  # not an absolute http(s) URL (another scheme, no host, spaces, too long)
LIST_BAD_ROW = "list_bad_row"  # a line that is not JSON / not an object, or a column of the wrong type
WARC_BAD_RECORD = "warc_bad_record"  # a WAT/WARC record that cannot be read (bad JSON, truncated, wrong fields)
CRAWL_REASONS = (ROBOTS_DISALLOWED, ROBOTS_UNREACHABLE, OPT_OUT_PAGE, OPT_OUT_IMAGE, OPT_OUT_TDMREP, SOCIAL_SENSITIVE,
                 SOCIAL_NOINDEX, SOCIAL_NO_UNAUTHENTICATED, BLOCKLISTED_URL, TEASER_IMAGE, SOCIAL_BAD_POST,
                 SOCIAL_BAD_RESPONSE, LIST_MISSING_URL, LIST_BAD_URL, LIST_BAD_ROW, WARC_BAD_RECORD)

# Image fetch failures: the crawl still writes a RAW row (image_bytes null, http_status / fetch_error set) so the
# clean funnel accounts for every candidate; the clean stage drops it as FETCH_FAILED.
FETCH_ERRORS = ("http_error", "timeout", "not_image", "too_large", "too_many_redirects", "connection_error")

# Clean stage: RAW row dropped; counted in the manifest funnel (`drops`).
INVALID_ID = "invalid_id"  # the RAW id is not a safe key (data_schemas.KEY_PATTERN): it would name files
FETCH_FAILED = "fetch_failed"
BLOCKLISTED = "blocklisted"  # url / domain / sha256 on the takedown blocklist
CAPTION_EMPTY = "caption_empty"
CAPTION_TOO_SHORT = "caption_too_short"
CAPTION_TOO_LONG = "caption_too_long"
CAPTION_BOILERPLATE = "caption_boilerplate"
LANG_NOT_ALLOWED = "lang_not_allowed"
IMAGE_UNDECODABLE = "image_undecodable"  # truncated, corrupt or not an image
IMAGE_DECOMPRESSION_BOMB = "image_decompression_bomb"  # pixel count over the limit
IMAGE_TOO_SMALL = "image_too_small"
IMAGE_BAD_ASPECT = "image_bad_aspect"
DUPLICATE_EXACT = "duplicate_exact"
DUPLICATE_NEAR = "duplicate_near"
DUPLICATE_PREVIOUS_RUN = "duplicate_previous_run"  # already in the dataset from an earlier run (incremental)
ROLE_NOT_ALLOWED = "role_not_allowed"  # the row's role (lead / body / teaser) is not in the clean config's `roles`
CLEAN_REASONS = (INVALID_ID, FETCH_FAILED, BLOCKLISTED, CAPTION_EMPTY, CAPTION_TOO_SHORT, CAPTION_TOO_LONG,
                 CAPTION_BOILERPLATE, LANG_NOT_ALLOWED, ROLE_NOT_ALLOWED, IMAGE_UNDECODABLE, IMAGE_DECOMPRESSION_BOMB,
                 IMAGE_TOO_SMALL,
                 IMAGE_BAD_ASPECT, DUPLICATE_EXACT, DUPLICATE_NEAR, DUPLICATE_PREVIOUS_RUN)

# Curate pass (`mmpipe curate`, model-based, over an existing dataset): counted in the curated version's funnel.
LOW_ALIGNMENT = "low_alignment"  # image-caption cosine below the threshold or outside the kept top fraction
DUPLICATE_SEMANTIC = "duplicate_semantic"  # image embedding within the cosine threshold of a better-aligned row
CURATE_REASONS = (IMAGE_UNDECODABLE, LOW_ALIGNMENT, DUPLICATE_SEMANTIC)
