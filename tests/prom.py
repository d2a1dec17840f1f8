"""Reading Prometheus' text format in tests, with prometheus-client's own parser."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

__all__ = ["Scrape"]


class Scrape:
    """One exposition, parsed: each sample's value by its name and labels."""

    def __init__(self, text: str) -> None:
        self.families = {f.name: f for f in text_string_to_metric_families(text)}
        self._values = {(s.name, frozenset(s.labels.items())): s.value
                        for f in self.families.values() for s in f.samples}

    def value(self, name: str, **labels: str) -> float:
        """The sample `name{labels}`; 0 when it was never counted (Prometheus' own view)."""
        return self._values.get((name, frozenset(labels.items())), 0.0)

    def labelled(self, name: str) -> dict[frozenset[tuple[str, str]], float]:
        """Every sample called `name`, by its labels."""
        return {labels: v for (n, labels), v in self._values.items() if n == name}
