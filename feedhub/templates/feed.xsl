<?xml version="1.0" encoding="utf-8"?>
<!-- What a browser shows of an Atom or RSS feed of this site: a readable page that says what a
     feed is and gives its address to copy into a reader. Readers ignore it. Only text is taken
     from the feed (never its HTML), so nothing in an entry runs here. -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
  xmlns:atom="http://www.w3.org/2005/Atom" exclude-result-prefixes="atom">
<xsl:output method="html" encoding="utf-8" doctype-system="about:legacy-compat"/>
<xsl:variable name="title" select="/atom:feed/atom:title | /rss/channel/title"/>
<xsl:variable name="address" select="/atom:feed/atom:link[@rel='self']/@href | /rss/channel/atom:link[@rel='self']/@href"/>
<xsl:template match="/">
<html lang="{/atom:feed/@xml:lang | /rss/channel/language}">
<head>
<meta charset="utf-8"/>
<meta name="viewport" content="width=device-width, initial-scale=1"/>
<meta name="color-scheme" content="light dark"/>
<link rel="icon" href="{{ site.icon_url }}"/>
<title><xsl:value-of select="$title"/> · {{ t.feed_preview }}</title>
<style>
:root { --text: #222; --muted: #666; --link: #0b57d0; --line: #ddd; --note: #eef3fd; --back: #fff; }
@media (prefers-color-scheme: dark) {
  :root { --text: #e6e6e6; --muted: #a0a0a0; --link: #8ab4f8; --line: #444; --note: #1d2a3f; --back: #121212; }
}
html { background: var(--back); color: var(--text); }
body { max-width: 46rem; margin: 0 auto; padding: 1rem; font: 16px/1.7 system-ui, sans-serif; overflow-wrap: break-word; }
a { color: var(--link); }
.note { background: var(--note); border-radius: .4rem; padding: .6rem .9rem; }
/* one click selects the whole address */
.note code { display: block; user-select: all; overflow-wrap: anywhere; font-size: .95rem; margin-top: .3rem; }
small { color: var(--muted); white-space: nowrap; }
ul { padding-left: 1.2rem; }
li p { margin: .2rem 0 .8rem; color: var(--muted); }
</style>
</head>
<body>
<div class="note"><strong>{{ t.this_is_a_feed }}</strong> {{ t.copy_the_address }}
<code id="feed-address"><xsl:value-of select="$address"/></code></div>
<h1><xsl:value-of select="$title"/></h1>
<p><xsl:value-of select="/atom:feed/atom:subtitle"/><xsl:call-template name="unescaped">
<xsl:with-param name="text" select="/rss/channel/description"/></xsl:call-template></p>
<p><a href="{/atom:feed/atom:link[@rel='alternate']/@href | /rss/channel/link}">{{ t.visit_site }} →</a></p>
<ul class="entries">
<xsl:for-each select="/atom:feed/atom:entry | /rss/channel/item">
<li><a href="{atom:link[@rel='alternate']/@href | link}"><xsl:value-of select="atom:title | title"/></a>
<xsl:text> </xsl:text><small><xsl:choose>
<xsl:when test="atom:published"><xsl:value-of select="translate(substring(atom:published, 1, 16), 'T', ' ')"/></xsl:when>
<xsl:otherwise><xsl:value-of select="pubDate"/></xsl:otherwise>
</xsl:choose></small>
<p><xsl:value-of select="atom:summary"/><xsl:call-template name="unescaped">
<xsl:with-param name="text" select="description"/></xsl:call-template></p></li>
</xsl:for-each>
</ul>
</body>
</html>
</xsl:template>
<!-- RSS descriptions are HTML, and this site's hold plain text escaped as HTML (&amp; &lt; &gt;):
     their text, as text, is shown with those three undone. -->
<xsl:template name="unescaped">
<xsl:param name="text"/>
<xsl:choose>
<xsl:when test="contains($text, '&amp;')">
<xsl:value-of select="substring-before($text, '&amp;')"/>
<xsl:variable name="rest" select="substring-after($text, '&amp;')"/>
<xsl:choose>
<xsl:when test="starts-with($rest, 'lt;')">&lt;<xsl:call-template name="unescaped">
<xsl:with-param name="text" select="substring($rest, 4)"/></xsl:call-template></xsl:when>
<xsl:when test="starts-with($rest, 'gt;')">&gt;<xsl:call-template name="unescaped">
<xsl:with-param name="text" select="substring($rest, 4)"/></xsl:call-template></xsl:when>
<xsl:when test="starts-with($rest, 'amp;')">&amp;<xsl:call-template name="unescaped">
<xsl:with-param name="text" select="substring($rest, 5)"/></xsl:call-template></xsl:when>
<xsl:otherwise>&amp;<xsl:call-template name="unescaped">
<xsl:with-param name="text" select="$rest"/></xsl:call-template></xsl:otherwise>
</xsl:choose>
</xsl:when>
<xsl:otherwise><xsl:value-of select="$text"/></xsl:otherwise>
</xsl:choose>
</xsl:template>
</xsl:stylesheet>
