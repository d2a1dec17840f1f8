"""Text someone else wrote, made inert for Slack: the one place it is escaped.

A requester's task, a graph's titles and results, a model's tool arguments and a reviewer's
comment are stored raw (the database and the audit trail keep exactly what was written) and
pass through this module only when they are drawn into a Slack message. Bot-authored text (our
labels, `<@U…>` mentions of IDs Slack gave us, `<!date^…>` tokens) never does.

How Slack reads text, and what is done about each part (Slack's "Formatting text for app
surfaces" and "Escaping text" pages, the Block Kit text object reference):

* `&`, `<` and `>` are Slack's control characters: every `<…>` is a token (`<!channel>`,
  `<@U123>`, `<https://x|label>`). Slack asks for exactly these three to be sent as `&amp;`,
  `&lt;` and `&gt;` and shows those entities as the characters, so that escape is exact and
  visible: the reader sees `<!channel>` as text and nobody is pinged.
* `*bold*`, `_italic_`, `~strike~` and `` `code` `` are not escapable: Slack has no entity for
  them and shows a backslash literally. They are replaced by look-alikes Slack's parser does
  not know (`∗` U+2217, `ˍ` U+02CD, `∼` U+223C, `ˋ` U+02CB): the character stays visible and
  can format nothing, with no invisible character whose handling we would have to guess.
  A zero-width space is the wrong tool here: Slack treats it as a word boundary, which is how
  people *enable* bold in the middle of a word. Slack formats `*`, `_` and `~` only at a word
  boundary, so one between two ASCII letters or digits (`send_email`, `2*3`) is left as it is
  and identifiers read, and copy, unchanged; a backtick is always replaced.
* `>` at the start of a line quotes it (also sent as `&gt;`, as Slack's own clients store
  it), so a `>` that begins a line becomes `＞` (U+FF1E). The start of the text counts as a
  line start, since we cannot know where it will be placed.
* `:name:` is an emoji shortcode (`:white_check_mark:`). The colon that would open one becomes
  `꞉` (U+A789), also when the text ends in `:name`, which a colon of ours placed after it
  would close; `https://` and `10:30 today` keep their colons. (Our templates never put a
  colon right before untrusted text, so `name:` at its start needs no change.)
* `@here`, `@channel` and `@name` are linked by Slack's own parsing when a message asks for
  `link_names` or a text object is not `verbatim`. An `@` that starts a word becomes `＠`
  (U+FF20); one inside a word (an e-mail address) is left.
* Bidirectional controls (which can reorder what is shown) and the invisible zero-width space,
  word joiner and byte-order mark are dropped; `\\r\\n`, `\\r` and Unicode line separators
  become `\\n`, so "line start" means one thing.

Bare URLs stay visible as themselves (their target is what is shown); the builders send
mrkdwn objects with `verbatim: true` and posts with unfurling off, so Slack neither links nor
previews them in blocks.

plain_text objects (headers, labels, modal titles) are not parsed for tokens or formatting,
only for `:shortcodes:` when `emoji` is true, so `plain()` breaks shortcodes and flattens lines
but escapes nothing (an `&amp;` there would be shown as `&amp;`).
"""

from __future__ import annotations

import re

__all__ = [
    "code", "counted", "cut", "decode_command_text", "mention", "plain", "untrusted",
]

_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_MARKS = {"*": "\u2217", "_": "\u02cd", "~": "\u223c"}
_BACKTICK = "\u02cb"
_QUOTE = "\uff1e"
_EMOJI_COLON = "\ua789"
_AT = "\uff20"

_NEWLINE = re.compile("\r\n|[\r\u0085\u2028\u2029]")
_INVISIBLE = re.compile("[\u200b\u2060\ufeff\u202a-\u202e\u2066-\u2069]")
_LINE_START_GT = re.compile(r"^[^\S\n]*(>)", re.MULTILINE)
# A colon that opens a shortcode, or could once our text follows (`{title}: rejected`).
_EMOJI_OPEN = re.compile(r":(?=[A-Za-z0-9_+'\-]+(?::|\Z))")
_COMMAND_ENTITY = re.compile("&(amp|lt|gt);")
_USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")
_ESCAPES = ("&amp;", "&lt;", "&gt;")


def _word(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


def _clean(text: str) -> str:
    return _INVISIBLE.sub("", _NEWLINE.sub("\n", text))


def untrusted(text: str) -> str:
    """Text for a mrkdwn field that shows every character and can format, ping or link nothing."""
    text = _clean(text)
    quotes = {m.start(1) for m in _LINE_START_GT.finditer(text)}
    emoji = {m.start() for m in _EMOJI_OPEN.finditer(text)}
    last = len(text) - 1
    out: list[str] = []
    for i, ch in enumerate(text):
        if i in quotes:
            out.append(_QUOTE)
        elif i in emoji:
            out.append(_EMOJI_COLON)
        elif ch in _ENTITIES:
            out.append(_ENTITIES[ch])
        elif ch == "`":
            out.append(_BACKTICK)
        elif ch in _MARKS:
            inside = 0 < i < last and _word(text[i - 1]) and _word(text[i + 1])
            out.append(ch if inside else _MARKS[ch])
        elif ch == "@" and not (i and _word(text[i - 1])):
            out.append(_AT)
        else:
            out.append(ch)
    return "".join(out)


def code(text: str) -> str:
    """Untrusted text as inline code: it cannot close the span early."""
    return f"`{untrusted(text) or ' '}`"


def plain(text: str) -> str:
    """Text for a plain_text field: one line, no emoji shortcodes (send it with emoji false)."""
    flat = " ".join(_clean(text).split())
    return _EMOJI_OPEN.sub(_EMOJI_COLON, flat)


def mention(user_id: str) -> str:
    """`<@U…>` for a Slack user ID; anything else is shown as escaped text, never as a token."""
    return f"<@{user_id}>" if _USER_ID.fullmatch(user_id) else untrusted(user_id)


def decode_command_text(text: str) -> str:
    """Undo Slack's `&amp;`, `&lt;`, `&gt;` in slash-command text, exactly once.

    One pass, so `&amp;lt;` (the user typed `&lt;`) becomes `&lt;`, not `<`. What comes out is
    what the person typed, stored raw and escaped again (once) when shown.
    """
    return _COMMAND_ENTITY.sub(lambda m: {"amp": "&", "lt": "<", "gt": ">"}[m[1]], text)


def cut(text: str, limit: int, *, markup: bool = True) -> str:
    """At most `limit` characters, ending in "…" when shortened.

    With `markup` (mrkdwn) the cut never splits an escape (`&amp;`) or a `<…>` token of ours:
    it backs up to before it rather than leave half of it to be shown or misread.
    """
    if len(text) <= limit:
        return text
    head = text[: max(limit - 1, 0)]
    if markup:
        amp = head.rfind("&")
        if amp != -1 and any(e.startswith(head[amp:]) and e != head[amp:] for e in _ESCAPES):
            head = head[:amp]
        lt = head.rfind("<")
        if lt != -1 and ">" not in head[lt:]:
            head = head[:lt]
    return head + "…"


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """A count with its noun agreeing: "1 request", "2 requests", "0 requests".

    The one place a number meets a noun in what a person reads, so nothing says
    "request(s)"; `plural` is for nouns that do not just take an "s" ("2 replies").
    """
    return f"{count} {noun if count == 1 else plural or noun + 's'}"
