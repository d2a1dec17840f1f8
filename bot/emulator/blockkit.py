"""Block Kit validation with Slack's limits, as a pure function of the JSON."""

from __future__ import annotations

from typing import Any

__all__ = ["validate_message_blocks", "validate_view"]

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_ID = 255
BUTTON_STYLES = ("primary", "danger")
MESSAGE_BLOCK_TYPES = {
    "section", "header", "divider", "context", "actions", "input", "rich_text", "image",
}
# Loosely accepted: checked for type and action_id only.
LOOSE_ELEMENTS = {
    "datepicker", "timepicker", "overflow", "users_select", "conversations_select",
    "channels_select", "multi_static_select", "multi_users_select", "email_text_input",
    "number_input", "url_text_input",
}
ELEMENT_TYPES = {"button", "plain_text_input", "static_select", "checkboxes", "radio_buttons"}
ELEMENT_TYPES |= LOOSE_ELEMENTS


class _Checker:
    """Collects error messages worded like Slack's, each with a JSON pointer."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def fail(self, path: str, what: str) -> None:
        self.errors.append(f"{what} [json-pointer:{path}]")

    def text(self, obj: Any, path: str, *, max_len: int, plain_only: bool = False) -> None:
        if not isinstance(obj, dict):
            self.fail(path, "must be a text object")
            return
        kind = obj.get("type")
        allowed = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
        if kind not in allowed:
            self.fail(f"{path}/type", f"must be one of {', '.join(allowed)}, not {kind!r}")
        text = obj.get("text")
        if not isinstance(text, str) or not text:
            self.fail(f"{path}/text", "must be a non-empty string")
        elif len(text) > max_len:
            self.fail(f"{path}/text", f"must be at most {max_len} characters, got {len(text)}")

    def ident(self, value: Any, path: str, *, required: bool = False) -> None:
        if value is None:
            if required:
                self.fail(path, "is required")
            return
        if not isinstance(value, str) or not value:
            self.fail(path, "must be a non-empty string")
        elif len(value) > MAX_ID:
            self.fail(path, f"must be at most {MAX_ID} characters, got {len(value)}")

    def length(self, value: Any, path: str, *, max_len: int) -> None:
        if value is not None and (not isinstance(value, str) or len(value) > max_len):
            self.fail(path, f"must be a string of at most {max_len} characters")

    def confirm(self, obj: Any, path: str) -> None:
        if not isinstance(obj, dict):
            self.fail(path, "must be a confirmation dialog object")
            return
        self.text(obj.get("title"), f"{path}/title", max_len=100, plain_only=True)
        self.text(obj.get("text"), f"{path}/text", max_len=300)
        self.text(obj.get("confirm"), f"{path}/confirm", max_len=30, plain_only=True)
        self.text(obj.get("deny"), f"{path}/deny", max_len=30, plain_only=True)
        if obj.get("style") is not None and obj["style"] not in BUTTON_STYLES:
            self.fail(f"{path}/style", "must be primary or danger")

    def options(self, options: Any, path: str, *, max_count: int) -> None:
        if not isinstance(options, list) or not options or len(options) > max_count:
            self.fail(path, f"must be a list of 1 to {max_count} options")
            return
        for i, option in enumerate(options):
            if not isinstance(option, dict):
                self.fail(f"{path}/{i}", "must be an option object")
                continue
            self.text(option.get("text"), f"{path}/{i}/text", max_len=75)
            self.length(option.get("value"), f"{path}/{i}/value", max_len=150)

    def element(self, el: Any, path: str) -> None:
        if not isinstance(el, dict):
            self.fail(path, "must be an element object")
            return
        kind = el.get("type")
        if kind not in ELEMENT_TYPES:
            self.fail(f"{path}/type", f"unsupported element type {kind!r}")
            return
        self.ident(el.get("action_id"), f"{path}/action_id")
        if kind == "button":
            self.text(el.get("text"), f"{path}/text", max_len=75, plain_only=True)
            self.length(el.get("value"), f"{path}/value", max_len=2000)
            self.length(el.get("url"), f"{path}/url", max_len=3000)
            if el.get("style") is not None and el["style"] not in BUTTON_STYLES:
                self.fail(f"{path}/style", f"must be primary or danger, not {el['style']!r}")
        elif kind == "plain_text_input":
            if el.get("placeholder") is not None:
                self.text(el["placeholder"], f"{path}/placeholder", max_len=150, plain_only=True)
            self.length(el.get("initial_value"), f"{path}/initial_value", max_len=3000)
        elif kind == "static_select":
            if "option_groups" not in el:
                self.options(el.get("options"), f"{path}/options", max_count=100)
        elif kind in ("checkboxes", "radio_buttons"):
            self.options(el.get("options"), f"{path}/options", max_count=10)
        if el.get("confirm") is not None:
            self.confirm(el["confirm"], f"{path}/confirm")

    def block(self, block: Any, path: str) -> None:
        if not isinstance(block, dict):
            self.fail(path, "must be a block object")
            return
        kind = block.get("type")
        if kind not in MESSAGE_BLOCK_TYPES:
            self.fail(f"{path}/type", f"unsupported block type {kind!r}")
            return
        self.ident(block.get("block_id"), f"{path}/block_id")
        check = getattr(self, f"_{kind}")
        check(block, path)

    def _section(self, block: dict[str, Any], path: str) -> None:
        text, fields = block.get("text"), block.get("fields")
        if text is None and fields is None:
            self.fail(path, "section must have text or fields")
        if text is not None:
            self.text(text, f"{path}/text", max_len=3000)
        if fields is not None:
            if not isinstance(fields, list) or not fields or len(fields) > 10:
                self.fail(f"{path}/fields", "must be a list of 1 to 10 text objects")
            else:
                for i, field in enumerate(fields):
                    self.text(field, f"{path}/fields/{i}", max_len=2000)
        if block.get("accessory") is not None:
            self.element(block["accessory"], f"{path}/accessory")

    def _header(self, block: dict[str, Any], path: str) -> None:
        self.text(block.get("text"), f"{path}/text", max_len=150, plain_only=True)

    def _divider(self, block: dict[str, Any], path: str) -> None:
        pass

    def _context(self, block: dict[str, Any], path: str) -> None:
        elements = block.get("elements")
        if not isinstance(elements, list) or not elements or len(elements) > 10:
            self.fail(f"{path}/elements", "must be a list of 1 to 10 elements")
            return
        for i, el in enumerate(elements):
            if isinstance(el, dict) and el.get("type") == "image":
                self._image(el, f"{path}/elements/{i}", url_key="image_url")
            else:
                self.text(el, f"{path}/elements/{i}", max_len=3000)

    def _actions(self, block: dict[str, Any], path: str) -> None:
        elements = block.get("elements")
        if not isinstance(elements, list) or not elements or len(elements) > 25:
            self.fail(f"{path}/elements", "must be a list of 1 to 25 elements")
            return
        seen: set[str] = set()
        for i, el in enumerate(elements):
            self.element(el, f"{path}/elements/{i}")
            action_id = el.get("action_id") if isinstance(el, dict) else None
            if action_id is not None and action_id in seen:
                self.fail(f"{path}/elements/{i}/action_id",
                          f"duplicate action_id {action_id!r} in the block")
            if isinstance(action_id, str):
                seen.add(action_id)

    def _input(self, block: dict[str, Any], path: str) -> None:
        self.text(block.get("label"), f"{path}/label", max_len=2000, plain_only=True)
        if block.get("hint") is not None:
            self.text(block["hint"], f"{path}/hint", max_len=2000, plain_only=True)
        if block.get("element") is None:
            self.fail(f"{path}/element", "is required")
        else:
            self.element(block["element"], f"{path}/element")

    def _rich_text(self, block: dict[str, Any], path: str) -> None:
        if not isinstance(block.get("elements"), list):
            self.fail(f"{path}/elements", "must be a list")

    def _image(self, block: dict[str, Any], path: str, url_key: str = "image_url") -> None:
        if not block.get(url_key) and not block.get("slack_file"):
            self.fail(f"{path}/{url_key}", "is required")
        self.length(block.get(url_key), f"{path}/{url_key}", max_len=3000)
        alt = block.get("alt_text")
        if not isinstance(alt, str) or not alt:
            self.fail(f"{path}/alt_text", "must be a non-empty string")

    def blocks(self, blocks: Any, path: str, *, max_count: int) -> None:
        if not isinstance(blocks, list):
            self.fail(path, "must be a list of blocks")
            return
        if len(blocks) > max_count:
            self.fail(path, f"no more than {max_count} items allowed, got {len(blocks)}")
        seen: set[str] = set()
        for i, block in enumerate(blocks):
            self.block(block, f"{path}/{i}")
            block_id = block.get("block_id") if isinstance(block, dict) else None
            if isinstance(block_id, str):
                if block_id in seen:
                    self.fail(f"{path}/{i}/block_id", f"duplicate block_id {block_id!r}")
                seen.add(block_id)


def validate_message_blocks(blocks: Any) -> list[str]:
    """Return Slack-style errors for a message's `blocks`; empty when Slack would accept them."""
    checker = _Checker()
    checker.blocks(blocks, "/blocks", max_count=MAX_MESSAGE_BLOCKS)
    return checker.errors


def validate_view(view: Any) -> list[str]:
    """Return Slack-style errors for a modal view; empty when Slack would accept it."""
    checker = _Checker()
    if not isinstance(view, dict):
        return ["view must be an object [json-pointer:/view]"]
    if view.get("type") not in ("modal", "home"):
        checker.fail("/view/type", f"must be modal or home, not {view.get('type')!r}")
    if view.get("type") == "modal":
        checker.text(view.get("title"), "/view/title", max_len=24, plain_only=True)
    for key in ("submit", "close"):
        if view.get(key) is not None:
            checker.text(view[key], f"/view/{key}", max_len=24, plain_only=True)
    checker.ident(view.get("callback_id"), "/view/callback_id")
    checker.ident(view.get("external_id"), "/view/external_id")
    checker.length(view.get("private_metadata"), "/view/private_metadata", max_len=3000)
    blocks = view.get("blocks")
    checker.blocks(blocks, "/view/blocks", max_count=MAX_VIEW_BLOCKS)
    has_input = isinstance(blocks, list) and any(
        isinstance(b, dict) and b.get("type") == "input" for b in blocks
    )
    if view.get("type") == "modal" and has_input and view.get("submit") is None:
        checker.fail("/view/submit", "is required when the view has input blocks")
    return checker.errors
