"""Dates the sandbox cannot represent are a Polygon 400 with a message, never a 500."""

import massive
import pytest
from massive.exceptions import BadResponse

from adapters.polygon.sandbox import PolygonSandbox
from tests.adapters.polygon.test_sandbox_rest import aggs_path, raw_get


@pytest.mark.parametrize(
    ("first", "last"),
    [("2024-12-27", "2999-12-31"), ("1960-01-01", "2024-12-31"), ("2024-12-27", "99999999999999999999")],
    ids=["far-future-to", "before-1970", "epoch-ms-overflow"],
)
def test_out_of_range_dates_are_a_400_naming_the_date(sandbox: PolygonSandbox, first: str, last: str) -> None:
    status, _, body = raw_get(sandbox, aggs_path(first=first, last=last))
    bad = last if first == "2024-12-27" else first
    assert status == 400 and body["status"] == "ERROR", body
    assert body["error"] == f"date '{bad}' is out of range: dates run from 1970-01-01 to 2262-04-09"


def test_the_sdk_sees_the_400_and_the_message(sandbox: PolygonSandbox) -> None:
    client = massive.RESTClient(api_key="test-key", base=sandbox.base_url, retries=0)
    with pytest.raises(BadResponse, match="2999-12-31.*out of range"):
        client.get_aggs("S000", 1, "minute", "2024-12-27", "2999-12-31")
    # The last representable day still answers (with the catalog's bars up to it).
    assert len(client.get_aggs("S000", 1, "minute", "2024-12-27", "2262-04-09", limit=50_000)) == 1170
