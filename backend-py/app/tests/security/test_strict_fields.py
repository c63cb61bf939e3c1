"""Fields that must not be coerced: ``"temperature": false`` is not 0.0."""

import httpx
import pytest
from fastapi import FastAPI


@pytest.mark.parametrize("temperature", [False, True, "0.5"])
async def test_a_temperature_that_is_not_a_number_is_422(
    auth_client: httpx.AsyncClient, temperature: object
) -> None:
    response = await auth_client.post(
        "/api/virtual-users",
        json={"name": "x", "system_prompt": "y", "temperature": temperature},
    )

    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "temperature"]


async def test_an_integer_temperature_is_still_a_number(
    auth_client: httpx.AsyncClient,
) -> None:
    response = await auth_client.post(
        "/api/virtual-users",
        json={"name": "x", "system_prompt": "y", "temperature": 1},
    )

    assert response.status_code == 201, response.text
    assert response.json()["temperature"] == 1.0


def test_the_schema_says_temperature_is_a_number_from_0_to_2(app: FastAPI) -> None:
    schemas = app.openapi()["components"]["schemas"]
    create = next(s for name, s in schemas.items() if name.startswith("PersonaCreate"))
    options = create["properties"]["temperature"]["anyOf"]

    assert {"type": "number", "minimum": 0, "maximum": 2} in options
