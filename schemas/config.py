"""The brand configuration: a YAML file, validated once at start.

Format::

    brands:
      - id: sprite
        names: [Sprite, Спрайт]      # untagged: found in plain text, any script, any case
        handles: [Sprite]            # tagged: @Sprite
        hashtags: [Sprite]           # tagged: #Sprite
        exclude: ["fairy sprite"]    # phrases that cancel a match
        competitors: [cocacola]      # the competitive set for share of voice

A bad file raises `ConfigError` whose message names the file and the field
(e.g. ``brands.yaml: brands[1].competitors[0]: unknown brand 'cocacolla'``).
"""

from __future__ import annotations

import re
import typing
from dataclasses import dataclass

import yaml

_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_HANDLE_RE = re.compile(r"^\w{1,100}$")
_BRAND_KEYS = ("id", "names", "handles", "hashtags", "exclude", "competitors")


class ConfigError(ValueError):
    """The brand configuration is invalid; the message names the field."""


@dataclass(frozen=True)
class Brand:
    """One brand to listen for.

    Attributes:
        id: Stable identifier used in every output row.
        names: Plain-text names (untagged mentions).
        handles: Account handles without '@' (tagged mentions).
        hashtags: Hashtags without '#' (tagged mentions).
        exclude: Phrases inside which a match does not count.
        competitors: Ids of the brands in its competitive set.
    """

    id: str
    names: typing.Tuple[str, ...] = ()
    handles: typing.Tuple[str, ...] = ()
    hashtags: typing.Tuple[str, ...] = ()
    exclude: typing.Tuple[str, ...] = ()
    competitors: typing.Tuple[str, ...] = ()


@dataclass(frozen=True)
class BrandConfig:
    """The validated configuration: brands in file order."""

    brands: typing.Tuple[Brand, ...]
    source: str = "<config>"

    def brand_ids(self) -> typing.List[str]:
        """Returns the brand ids in file order."""
        return [b.id for b in self.brands]

    def competitive_set(self, brand_id: str) -> typing.Tuple[str, ...]:
        """Returns the brand and its competitors, or () when it has none."""
        brand = {b.id: b for b in self.brands}[brand_id]
        return (brand.id,) + brand.competitors if brand.competitors else ()


def _string_list(value: typing.Any, where: str, strip: str = "") -> typing.Tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise ConfigError(f"{where}: expected a list of strings, got {type(value).__name__}")
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, (str, int)) or isinstance(item, bool):
            raise ConfigError(f"{where}[{i}]: expected a string, got {type(item).__name__}")
        text = str(item).strip()
        if strip and text.startswith(strip):
            text = text[len(strip):]
        if not text:
            raise ConfigError(f"{where}[{i}]: empty string")
        out.append(text)
    return tuple(out)


def parse_config(data: typing.Any, source: str = "<config>") -> BrandConfig:
    """Validates a parsed YAML document and builds the BrandConfig.

    Args:
        data: The document, as `yaml.safe_load` returns it.
        source: The file name, used in error messages.

    Returns:
        The validated configuration.

    Raises:
        ConfigError: naming the offending field.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping with a 'brands' list")
    unknown = sorted(set(data) - {"brands"})
    if unknown:
        raise ConfigError(f"{source}: unknown top-level key(s) {unknown}; expected 'brands'")
    raw_brands = data.get("brands")
    if not isinstance(raw_brands, list) or not raw_brands:
        raise ConfigError(f"{source}: brands: expected a non-empty list of brands")

    brands: typing.List[Brand] = []
    seen: typing.Dict[str, int] = {}
    for i, raw in enumerate(raw_brands):
        where = f"{source}: brands[{i}]"
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: expected a mapping with at least 'id' and 'names'")
        extra = sorted(set(raw) - set(_BRAND_KEYS))
        if extra:
            raise ConfigError(f"{where}: unknown key(s) {extra}; allowed: {list(_BRAND_KEYS)}")
        brand_id = raw.get("id")
        if not isinstance(brand_id, str) or not _ID_RE.match(brand_id):
            raise ConfigError(
                f"{where}.id: {brand_id!r} is not a valid id (lowercase letters, digits, '_' or '-', "
                "starting with a letter or digit)")
        if brand_id in seen:
            raise ConfigError(f"{where}.id: duplicate id {brand_id!r} (also brands[{seen[brand_id]}])")
        seen[brand_id] = i
        handles = _string_list(raw.get("handles"), f"{where}.handles", strip="@")
        hashtags = _string_list(raw.get("hashtags"), f"{where}.hashtags", strip="#")
        for key, values in (("handles", handles), ("hashtags", hashtags)):
            for j, v in enumerate(values):
                if not _HANDLE_RE.match(v):
                    raise ConfigError(f"{where}.{key}[{j}]: {v!r} may only hold letters, digits and '_'")
        brand = Brand(
            id=brand_id,
            names=_string_list(raw.get("names"), f"{where}.names"),
            handles=handles,
            hashtags=hashtags,
            exclude=_string_list(raw.get("exclude"), f"{where}.exclude"),
            competitors=_string_list(raw.get("competitors"), f"{where}.competitors"),
        )
        if not (brand.names or brand.handles or brand.hashtags):
            raise ConfigError(f"{where}.names: brand {brand_id!r} needs at least one of names, handles, hashtags")
        brands.append(brand)

    for i, brand in enumerate(brands):
        for j, comp in enumerate(brand.competitors):
            if comp == brand.id:
                raise ConfigError(f"{source}: brands[{i}].competitors[{j}]: a brand cannot compete with itself")
            if comp not in seen:
                raise ConfigError(
                    f"{source}: brands[{i}].competitors[{j}]: unknown brand {comp!r} (known: {sorted(seen)})")
    return BrandConfig(tuple(brands), source)


def load_config(path: str, opener: typing.Callable[[str], typing.IO[bytes]] = None) -> BrandConfig:
    """Reads and validates a brand config file.

    Args:
        path: Local path (or any path `opener` understands, e.g. a gs:// path).
        opener: Opens `path` for reading bytes; defaults to the local `open`.

    Returns:
        The validated configuration.

    Raises:
        ConfigError: when the file is missing, is not YAML, or a field is invalid.
    """
    try:
        with (opener(path) if opener else open(path, "rb")) as fh:
            raw = fh.read()
    except (OSError, IOError) as exc:
        raise ConfigError(f"{path}: cannot read the brand config: {exc}") from exc
    try:
        data = yaml.safe_load(raw.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    return parse_config(data, source=path)
