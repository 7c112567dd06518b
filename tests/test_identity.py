from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from feedhub.index.identity import name_based_id

NAMESPACE = uuid.UUID("6f1d7a52-3c0e-4c4b-9a57-5a0f2e0b8c11")  # feedhub's, as every stored id has it


@given(st.text())
def test_name_based_ids_are_uuid5_in_feedhubs_namespace(name: str) -> None:
    assert name_based_id(name) == f"urn:uuid:{uuid.uuid5(NAMESPACE, name)}"


def test_an_id_stored_by_an_earlier_feedhub_is_made_again() -> None:
    assert name_based_id("2021-12-08-202112082206717618") == "urn:uuid:981641a3-ec1c-550d-ab72-27e0b9db6079"
