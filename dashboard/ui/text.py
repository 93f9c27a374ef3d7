"""Text from outside the app, made inert before it reaches Markdown or HTML.

Why: `st.warning`, `st.error`, `st.caption`, `st.markdown` and headers render Markdown, and
`st.html` renders HTML. A query parameter such as `?icu.[click here](http://evil/)=1`, a file
name, a value quoted from an uploaded file, or an endpoint's `model_version`, `data_period` or
error text would otherwise become a clickable link, an image the browser fetches, or a form.
Every value that a user, a URL, a file or an endpoint sends goes through one of these before it
is shown; the page's own wording around it keeps its formatting.
"""

from __future__ import annotations

import html
import re

# CommonMark lets a backslash make any ASCII punctuation literal. Escaped: what starts a link or an
# image (`[ ] !`), HTML, autolinks and entities (`< > &`), code and emphasis, headings and tables,
# Streamlit's `$...$` maths and `{...}` attributes. Other punctuation stays readable: with `[`
# escaped, `:red[...]` is no directive, and `-`, `+`, `:` start nothing on a single line.
_MARKUP = re.compile(r"([\\`*_~\[\]!<>&${}#|])")
# Streamlit's renderer turns bare URLs into links even through backslash escapes (a real browser
# showed `http\://127\.0\.0\.1` as a link), so what starts an autolink, `://`, `www.` and the `@` of
# an address, gets an invisible zero-width space inside it: shown the same, never a link.
_AUTOLINK = re.compile(r"(:)(//)|(www)(\.)|()(@)", re.IGNORECASE)
_ZWSP = "\u200b"
_SPACES = re.compile(r"\s+")


def md(value: object, limit: int | None = None) -> str:
    """`value` as literal text inside Markdown: one line, every character that could start markup escaped.

    `limit` (characters) cuts the raw text first, with an ellipsis, so an escape is never split.
    Example: md("[x](http://a.b)") escapes the brackets and breaks "://" with a zero-width space;
    it is shown as [x](http://a.b), not as a link.
    """
    text = _SPACES.sub(" ", str(value)).strip()
    if limit is not None and len(text) > limit:
        text = text[: max(limit - 1, 0)] + "…"
    text = _AUTOLINK.sub(lambda m: _ZWSP.join(part for part in m.groups() if part is not None), text)
    return _MARKUP.sub(r"\\\1", text)


def md_code(value: object, limit: int = 120) -> str:
    """`value` as an inline code span when it can be one (no backtick, one line), else as `md` text."""
    text = str(value)
    if len(text) <= limit and text.isprintable() and "`" not in text:
        return f"`{text}`"
    return md(text, limit)


def html_text(value: object, limit: int | None = None) -> str:
    """`value` as literal text inside HTML (`st.html`): tags, entities and quotes escaped."""
    text = str(value)
    if limit is not None and len(text) > limit:
        text = text[: max(limit - 1, 0)] + "…"
    return html.escape(text, quote=True)
