"""Every bound feedhub puts on what it reads, in one place (the README's "Limits and safety" lists them).

Input is hostile until proven otherwise: an upstream feed, a post file, a config file
and an HTTP request may each be built to exhaust memory, time or disk. These numbers
keep one bad item from costing more than a bounded share of any of them.
"""

from __future__ import annotations

MIB = 1024 * 1024

# ---- one upstream entry, as it becomes a post -------------------------------------------------
MAX_TITLE_CHARS = 1_000  # longer titles are cut (at a sentence end or a space, with "…")
MAX_DESCRIPTION_CHARS = 1_000  # of an upstream feed's description (its category's, in feedhub's feeds)
MAX_CONTENT_BYTES = 1 * MIB  # sanitized HTML (UTF-8); longer content is cut at a tag boundary
MAX_NAME_CHARS = 200  # an author's name, a category or media type: cut beyond
MAX_URL_CHARS = 4_000  # a link or enclosure URL longer than this is dropped
MAX_IDENTITY_CHARS = 1_000  # an upstream id longer than this is identified by its hash
MAX_ENCLOSURES = 20  # attachments kept per entry
# HTML nested deeper (post bodies too) is published as its text: html5ever takes quadratic time on it.
MAX_HTML_DEPTH = 1_000

# ---- upstream documents -----------------------------------------------------------------------
MAX_FEED_BYTES = 50 * MIB  # the most a source's max_bytes may allow (the default is 10 MiB)
MAX_ENTITY_CHARS = 8  # an entity declared in a feed's DOCTYPE is kept only if this short (&nbsp;)
MAX_REDIRECTS = 5

# ---- post files and YAML ----------------------------------------------------------------------
# A larger post file is skipped and reported, never read. The aggregator's posts stay well under:
# content of 1 MiB grows at most 5× when written (a line break inside <pre> becomes &#10;).
MAX_POST_BYTES = 8 * MIB
MAX_CONFIG_BYTES = 16 * MIB  # feedhub.yaml, sources.yaml
MAX_YAML_DEPTH = 100  # levels of [ ] and { } nesting
MAX_FRONT_MATTER_NODES = 10_000  # values aliases may expand one post's front matter to (each use counts)
MAX_CONFIG_NODES = 1_000_000  # the same, in a config file
MAX_ICON_BYTES = 1 * MIB  # the site's icon file (`icon`)

# ---- search -----------------------------------------------------------------------------------
MAX_SEARCH_TOKENS = 10_000  # words of a post searched (a CJK character is one): its title, then its text
MAX_QUERY_CHARS = 200  # of a query; the rest is not read
MAX_QUERY_TERMS = 8  # words or "phrases" of a query that count; all must match
MAX_SEARCH_PAGES = 50  # pages of results offered (of SEARCH_PAGE_SIZE): refine the query beyond
RELEVANCE_WINDOW = 2_000  # best match first ranks the newest this many matches of a query

# ---- messages ---------------------------------------------------------------------------------
MAX_QUOTED_CHARS = 120  # of a value quoted in an error or warning

# ---- the HTTP server (feedhub serve) ----------------------------------------------------------
REQUEST_HEAD_TIMEOUT = 10.0  # seconds a client has to send a whole request (line, headers and body)
MAX_REQUEST_HEAD_BYTES = 64 * 1024  # request line and headers
MAX_REQUEST_BODY_BYTES = 64 * 1024  # feedhub takes no uploads; a form is far smaller
KEEPALIVE_SECONDS = 5  # an idle kept-alive connection is closed after this
MAX_CONNECTIONS_PER_WORKER = 1_000  # open connections a web worker holds at once (idle ones included)

# ---- WebSub (subscribing to upstream hubs) ---------------------------------------------------
MAX_HUBS = 10  # hubs taken from one feed (or its Link header); the first one that answers is used
MAX_PUSH_BYTES = 5 * MIB  # content an upstream hub pushes; larger is refused (413: the next poll gets it)
MAX_CHALLENGE_CHARS = 1_000  # a hub.challenge longer than this is not echoed

# ---- WebSub (the built-in hub) ----------------------------------------------------------------
MAX_CALLBACK_URL_CHARS = 2_000  # a hub.callback or hub.topic longer than this is refused
MAX_SECRET_BYTES = 199  # hub.secret must be under 200 bytes (the Recommendation, 5.1)
MAX_WAITING_REQUESTS = 10_000  # subscription requests not yet verified; beyond: 503, try later
CALLBACK_CONNECT_TIMEOUT = 5.0  # seconds to connect to a callback or an outside hub
CALLBACK_TIMEOUT = 10.0  # seconds each wait for its answer may take
MAX_CHALLENGE_ANSWER_BYTES = 1_024  # read of a verification answer; the rest is never read
DELIVERY_THREADS = 32  # deliveries and verifications under way at once
DELIVERIES_PER_HOST = 8  # of them to one callback host, so one slow host cannot take them all
RETRY_FIRST_SECONDS = 10.0  # a failed delivery or ping is tried again after this, then doubling
RETRY_MAX_SECONDS = 3_600.0  # the longest wait between two tries
RETRY_FOR_SECONDS = 86_400.0  # a delivery or ping still failing this long after it was due is dropped
