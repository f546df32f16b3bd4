"""The one way user text reaches a page. Prompts, responses, demonstrations, rationales, guidelines, names
and model replies are data, never markup; every UI module hands them to one of these before Gradio sees them:

- `user_markdown(text)`: a block of user text as HTML. Every HTML tag in it is escaped and only a safe
  Markdown subset renders (paragraphs, line breaks, emphasis, code, lists, quotes, headings, tables). Images
  never load (a remote image is a tracking pixel): they become their alt text and address. Links open in a new
  tab with `rel="noopener noreferrer nofollow"` and the address shown beside the text, so a link cannot pretend
  to go somewhere else; only http, https and mailto addresses are links at all.
- `html_text(text)`: a short user string inside the app's own HTML, as literal text.
- `inline(text)` and `code(text)`: a short user string inside the app's own Markdown (a name, a tag, a
  version), as literal text or as a code span; `cell(text)` for the report tables of annotation.reports.
- `preformatted(text)`: a block shown as written, monospaced (a job's log); `table_text(text)` for a cell of
  the app's own Markdown tables.

Gradio's Markdown and Chatbot components run what we send through their own Markdown renderer and sanitizer
as well, so every character of user text that Markdown or HTML gives a meaning to leaves `user_markdown` as a
numeric character reference: a second Markdown pass finds nothing to render in it, and the browser shows the
same characters. The Content-Security-Policy (workbench/ui/guard.py) is the backstop behind this module."""

from __future__ import annotations

import re

from markdown_it import MarkdownIt

# Every ASCII character Markdown or HTML treats specially, sent as a character reference (&#NN;).
_SPECIAL = re.compile(r"""[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~]""")
_LINK_SCHEMES = ("http://", "https://", "mailto:")


def _text(value: str) -> str:
    return _SPECIAL.sub(lambda m: f"&#{ord(m.group())};", value)


def _attr(value: str) -> str:
    return _text(value)  # the same references are valid (and inert) inside a quoted attribute


def _address(url: str) -> str:
    return f'<span class="user-link-address">({_text(url)})</span>'


def _build() -> MarkdownIt:
    # html=False: raw HTML in the source is text. linkify off: only explicit links are links. breaks on: a
    # newline an annotator typed stays a line break.
    md = MarkdownIt("commonmark", {"html": False, "breaks": True, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])

    def text(self, tokens, idx, options, env):
        return _text(tokens[idx].content)

    def code_inline(self, tokens, idx, options, env):
        return f"<code>{_text(tokens[idx].content)}</code>"

    def code_block(self, tokens, idx, options, env):
        # no language class: the info string is user text too
        return f"<pre><code>{_text(tokens[idx].content)}</code></pre>\n"

    def image(self, tokens, idx, options, env):
        token = tokens[idx]
        alt = self.renderInlineAsText(token.children or [], options, env)
        return f'<span class="user-image">&#91;image: {_text(alt)}&#93; {_address(token.attrGet("src") or "")}</span>'

    def link_open(self, tokens, idx, options, env):
        href = str(tokens[idx].attrGet("href") or "")
        # the address is shown after the text unless the text is the address (an autolink)
        shown = "" if _link_text(tokens, idx).strip() == href else " " + _address(href)
        clickable = href.lower().startswith(_LINK_SCHEMES)  # relative, javascript:, data: ... stay text
        env.setdefault("links", []).append(("</a>" if clickable else "") + shown)
        if not clickable:
            return ""
        return f'<a href="{_attr(href)}" target="_blank" rel="noopener noreferrer nofollow" class="user-link">'

    def link_close(self, tokens, idx, options, env):
        return env["links"].pop()

    for name, rule in (("text", text), ("code_inline", code_inline), ("code_block", code_block),
                       ("fence", code_block), ("image", image), ("link_open", link_open),
                       ("link_close", link_close)):
        md.add_render_rule(name, rule)
    return md


def _link_text(tokens, open_idx: int) -> str:
    """The plain text between a link_open token and its link_close."""
    depth, parts = 0, []
    for token in tokens[open_idx + 1:]:
        if token.type == "link_open":
            depth += 1
        elif token.type == "link_close":
            if depth == 0:
                break
            depth -= 1
        elif token.type in ("text", "code_inline"):
            parts.append(token.content)
    return "".join(parts)


_MD = _build()


def user_markdown(text: str | None) -> str:
    """User text as safe HTML: escaped, with the safe Markdown subset rendered (see the module docstring)."""
    return _MD.render(text or "", {}).strip()


def html_text(text: str | None) -> str:
    """A short user string inside the app's own HTML (a name in the adjudication view), shown literally."""
    return _text(str(text or ""))


# Inside the app's own Markdown: what could start markup (HTML, emphasis, code, links, images, tables, LaTeX,
# headings) is backslash-escaped, and bare addresses are kept from turning into links. Plain punctuation
# ("Saved.", "sft-1") stays as it is, so the app's messages read the same through the API.
_MARKUP = re.compile(r"""[\\`*_\[\]<>&!|~$#]""")


def inline(text: str | None) -> str:
    """A short user string inside the app's own Markdown, shown literally on one line."""
    value = _MARKUP.sub(lambda m: "\\" + m.group(), " ".join(str(text or "").split()))
    return value.replace("://", "\\://").replace("www.", "www\\.")


def cell(text: str | None) -> str:
    """A short user string for a table cell of annotation.reports, which HTML-escapes cells itself (and their
    pipes): only the Markdown characters are escaped here."""
    value = re.sub(r"([\\`*_\[\]!~$#])", r"\\\1", " ".join(str(text or "").split()))
    return value.replace("://", "\\://").replace("www.", "www\\.")


def code(text: str | None) -> str:
    """A short user string as a Markdown code span inside the app's own Markdown (a tag, a version id)."""
    # A code span shows its content literally (no references decoded), so only backticks, newlines and the
    # table's pipes need care: a fence longer than any backtick run inside, pipes escaped for GFM tables.
    value = " ".join(str(text or "").split()).replace("|", "\\|")
    fence = "`" * (max((len(r) for r in re.findall(r"`+", value)), default=0) + 1)
    pad = " " if value.startswith("`") or value.endswith("`") else ""
    return f"{fence}{pad}{value}{pad}{fence}"


def preformatted(text: str | None) -> str:
    """Text as it is, in a monospaced block (a job's log): every character Markdown or HTML reads is a
    character reference, so a log line that quotes a prompt or a tag shows as written."""
    return f"<pre><code>{_text(str(text or ''))}</code></pre>"


def table_text(text: str | None) -> str:
    """A short user string as a cell of the app's own Markdown tables (a job's error, a user's name): `inline`,
    with the table's pipes escaped too."""
    return inline(text).replace("|", "\\|")
