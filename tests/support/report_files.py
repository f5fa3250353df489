"""Reading what a run leaves behind: the images a report embeds, and Locust's own stats CSV."""

import csv
from html.parser import HTMLParser
from pathlib import Path


class _Images(HTMLParser):
    def __init__(self):
        super().__init__()
        self.sources = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.sources.append(dict(attrs)["src"])


def embedded_images(html: str) -> list[str]:
    """The src of every <img> in a page (parsing it also proves it parses)."""
    parser = _Images()
    parser.feed(html)
    parser.close()
    return parser.sources


def locust_rows(folder: Path) -> dict[str, dict]:
    """locust_stats.csv of a run, a row per "METHOD name" (and "Aggregated")."""
    with open(folder / "locust_stats.csv", newline="") as f:
        return {f"{row['Type']} {row['Name']}".strip(): row for row in csv.DictReader(f)}
