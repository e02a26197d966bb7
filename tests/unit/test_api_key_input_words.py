"""A key that is not plain ASCII, or holds a quote or backslash, is refused on the ``api_key``
field in words that never repeat the key."""

from __future__ import annotations

import pytest

from domain.byok import validate_api_key
from domain.catalog import Catalog
from domain.errors import ValidationError
from domain.secrets import Secret


@pytest.mark.parametrize(
    ("key", "detail"),
    [
        ("sk-proj-abcdéfghijklmnop", "api_key must contain only ASCII characters"),
        ('sk-proj-abc"defghijklmnop', "api_key must not contain quotes or backslashes"),
        ("sk-proj-abc\\defghijklmnop", "api_key must not contain quotes or backslashes"),
        ("sk-proj-abc'defghijklmnop", "api_key must not contain quotes or backslashes"),
    ],
)
def test_a_key_with_characters_no_provider_issues_is_refused_in_words(
    catalog: Catalog, key: str, detail: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        validate_api_key(catalog.byok_provider("openai"), Secret(key))
    assert (raised.value.field, raised.value.detail) == ("api_key", detail)
