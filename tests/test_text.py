"""bot.text: untrusted text shows every character and can format, ping or link nothing."""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import example, given
from hypothesis import strategies as st

from bot import text as text_module
from bot.text import code, counted, cut, decode_command_text, mention, plain, untrusted

# Characters Slack reads as markup, with letters, spaces and newlines around them.
MARKUP = st.text(alphabet=st.sampled_from(list("<>&*_~`:@!|^#/. \n\taZ09-+'")), max_size=60)
ANY = st.text(max_size=80)

LIVE_TOKEN = re.compile(r"<[^<>]*>")
SHORTCODE = re.compile(r":[A-Za-z0-9_+'\-]+:")
LINE_START_QUOTE = re.compile(r"^[^\S\n]*(&gt;|>)", re.MULTILINE)
LOOKALIKES = {"\u2217": "*", "\u02cd": "_", "\u223c": "~", "\u02cb": "`", "\uff1e": ">",
              "\ua789": ":", "\uff20": "@"}


def formats(out: str) -> list[str]:
    """The *, _, ~ that could open or close formatting: not between two ASCII alphanumerics."""
    word = re.compile(r"[A-Za-z0-9]")
    return [ch for i, ch in enumerate(out) if ch in "*_~"
            and not (0 < i < len(out) - 1 and word.match(out[i - 1]) and word.match(out[i + 1]))]


def entities_whole(out: str) -> bool:
    """Every & starts one of Slack's three escapes."""
    return all(out.startswith(("&amp;", "&lt;", "&gt;"), i) for i, ch in enumerate(out)
               if ch == "&")


def shown_as(out: str) -> str:
    """What a reader sees: Slack's escapes decoded, the look-alikes read as what they mimic."""
    seen = decode_command_text(out)
    return "".join(LOOKALIKES.get(ch, ch) for ch in seen)


@given(MARKUP | ANY)
@example("✅ *Approved* by <@U0DAVE> <!channel> <https://evil.example|click>")
@example("<http://x|y> <!here> <!subteam^S1> <#C1|general> <!date^1^x|y>")
@example("a\u200b*bold*\u200bb")  # the zero-width trick that enables bold mid-word
@example("> quoted\n  >> also\n>>> all")
@example(":white_check_mark::skin-tone-2: at 10:30:00")
def test_untrusted_output_is_inert(raw: str) -> None:
    """No < or > survives, every & is a whole escape, and nothing can format or quote."""
    out = untrusted(raw)
    assert "<" not in out and ">" not in out
    assert not LIVE_TOKEN.search(out)
    assert entities_whole(out)
    assert "`" not in out
    assert formats(out) == []
    assert not SHORTCODE.search(out)
    assert not LINE_START_QUOTE.search(out)
    assert not re.search(r"(^|[^A-Za-z0-9])@", out)


@given(MARKUP)
def test_untrusted_shows_every_character(raw: str) -> None:
    """Read back through Slack's escapes and the look-alikes, the text is what was written."""
    assert shown_as(untrusted(raw)) == raw


def test_identifiers_and_addresses_are_left_alone() -> None:
    """Marks inside a word, colons that open no shortcode, @ in an address: unchanged."""
    for raw in ("send_email", "prod_logs_2024", "2*3", "alice@example.com",
                "https://github.com/acme/api/pull/7", "at 10:30 today", "Note: ok"):
        assert untrusted(raw) == raw
    assert untrusted("ends :smile") == "ends \ua789smile"  # our ": …" after it would close it


def test_known_tokens_become_text() -> None:
    """Mentions, links and formatting are escaped to text a reader sees as typed."""
    assert untrusted("<!channel>") == "&lt;!channel&gt;"
    assert untrusted("<@U123>") == "&lt;\uff20U123&gt;"
    assert untrusted("<http://x|y>") == "&lt;http://x|y&gt;"
    assert untrusted("*bold*") == "\u2217bold\u2217"
    assert untrusted("> hi") == "\uff1e hi"
    assert untrusted("a > b") == "a &gt; b"
    assert untrusted(":white_check_mark:") == "\ua789white_check_mark:"
    assert untrusted("R&D") == "R&amp;D"


def test_invisible_and_reordering_characters_are_dropped() -> None:
    """Bidi overrides and zero-width spaces cannot disguise text; CR and LS become LF."""
    assert untrusted("a\u202eb\u200bc\u2066d") == "abcd"
    assert untrusted("a\r\nb\rc\u2028d") == "a\nb\nc\nd"


def test_decode_command_text_decodes_exactly_once() -> None:
    """Slack's &amp; &lt; &gt; in command text are undone once; a typed entity survives."""
    assert decode_command_text("R&amp;D &lt;x&gt;") == "R&D <x>"
    assert decode_command_text("&amp;lt;") == "&lt;"
    assert decode_command_text("&amp;amp;") == "&amp;"
    assert decode_command_text("a & b &quot;") == "a & b &quot;"


@given(ANY)
def test_decode_undoes_slacks_encoding(raw: str) -> None:
    """What Slack encodes (& first, then < and >), decoding gives back."""
    encoded = raw.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    assert decode_command_text(encoded) == raw


def test_decoded_command_text_is_escaped_once_when_shown() -> None:
    """R&amp;D from Slack is stored as R&D and shown as R&amp;D, never &amp;amp;."""
    shown = untrusted(decode_command_text("R&amp;D &lt;x&gt;"))
    assert shown == "R&amp;D &lt;x&gt;"
    assert "&amp;amp;" not in shown


@given(MARKUP | ANY, st.integers(min_value=1, max_value=40))
def test_cut_never_splits_an_escape(raw: str, limit: int) -> None:
    """A cut escaped text fits its limit and still holds only whole escapes."""
    out = cut(untrusted(raw), limit)
    assert len(out) <= limit
    assert entities_whole(out)


def test_cut_never_splits_a_token_of_ours() -> None:
    """A cut through a <!date> token drops the token rather than leave half of it."""
    text = "Decided at <!date^1767258000^{date_short_pretty}|2026-01-01 09:00 UTC> ok"
    out = cut(text, 30)
    assert out == "Decided at …"
    assert cut("short", 10) == "short"
    assert cut("R&D raw", 3, markup=False) == "R&…"


@given(MARKUP | ANY)
def test_plain_is_one_line_without_shortcodes(raw: str) -> None:
    """plain(): for plain_text fields, one line and no emoji shortcode."""
    out = plain(raw)
    assert "\n" not in out and "\r" not in out
    assert not SHORTCODE.search(out)


def test_plain_escapes_nothing_slack_would_show() -> None:
    """plain_text is not parsed for tokens, so an entity there would be shown as typed."""
    assert plain("R&D <x>") == "R&D <x>"


def test_mention_only_for_user_ids() -> None:
    """A user ID becomes a mention; anything else is escaped text."""
    assert mention("U0ALICE") == "<@U0ALICE>"
    assert mention("W123ABC") == "<@W123ABC>"
    assert mention("<!channel>") == "&lt;!channel&gt;"
    assert mention("U1> <!here") == "U1&gt; &lt;!here"


@given(MARKUP)
def test_code_span_cannot_be_closed_early(raw: str) -> None:
    """Inside a code span, untrusted text holds no backtick of its own."""
    out = code(raw)
    assert out.startswith("`") and out.endswith("`") and out.count("`") == 2


def test_exports() -> None:
    """__all__ lists exactly the public names."""
    public = {n for n in vars(text_module) if not n.startswith("_") and callable(
        getattr(text_module, n)) and getattr(text_module, n).__module__ == "bot.text"}
    assert set(text_module.__all__) == public


@given(MARKUP, MARKUP)
def test_joined_with_our_text_no_shortcode_forms(left: str, right: str) -> None:
    """Untrusted text followed by our ": rejected" cannot complete an emoji shortcode."""
    assert not SHORTCODE.search(untrusted(left) + ": rejected")
    assert not SHORTCODE.search(untrusted(left) + " · " + untrusted(right))


def test_a_count_agrees_with_its_noun() -> None:
    """1 request, 2 requests, 0 requests; an irregular plural when given."""
    assert counted(1, "request") == "1 request"
    assert counted(2, "request") == "2 requests"
    assert counted(0, "request") == "0 requests"
    assert counted(3, "reply", "replies") == "3 replies"


_QUOTED = re.compile(r"\"[^\"]*\"|'[^']*'|`[^`]*`")  # the string literals of a line


def test_no_text_says_a_noun_with_an_s_in_brackets() -> None:
    """Nothing a person reads says "request(s)": counts go through `counted`."""
    root = Path(__file__).resolve().parents[1]
    found = [f"{path.relative_to(root)}:{n}: {line.strip()}"
             for folder in ("bot", "graphs") for path in sorted((root / folder).rglob("*"))
             if path.suffix in (".py", ".js", ".html")
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if any(re.search(r"[a-z]\((s|es)\)", quoted) for quoted in _QUOTED.findall(line))
             and "http(s)" not in line and "\"request(s)\"" not in line]
    assert found == []
