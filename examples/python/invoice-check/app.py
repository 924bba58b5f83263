"""invoice-check: validates an invoice annotation (see conformance/README.md).

Required fields must have a value, `amount_total` must be a number no greater than
`max_total`, and the currency code is trimmed and upper-cased.
"""

import json
import re
from decimal import Decimal

import wit_world
from componentize_py_types import Err
from wit_world.imports import host, types

NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def datapoints(nodes):
    """The tree's datapoints, depth first, in order."""
    if not isinstance(nodes, list):
        raise Err("annotation.content (or a node's children) is not a list")
    for node in nodes:
        if "children" in node:
            yield from datapoints(node["children"])
        elif node.get("category") == "datapoint":
            yield node


def value_of(datapoint):
    value = (datapoint.get("content") or {}).get("value")
    return value if isinstance(value, str) else None


class WitWorld(wit_world.WitWorld):
    def handle(self, request: types.Request) -> str:
        settings = json.loads(request.settings)
        payload = json.loads(request.payload)
        content = (payload.get("annotation") or {}).get("content")
        if content is None:
            raise Err("the payload has no annotation.content")
        nodes = list(datapoints(content))
        messages, operations = [], []

        for schema_id in settings.get("required", []):
            found = next((d for d in nodes if d.get("schema_id") == schema_id), None)
            if found is None:
                messages.append({"type": "error", "content": f"{schema_id} is required"})
            elif not (value_of(found) or "").strip():
                messages.append(
                    {"type": "error", "content": f"{schema_id} is required", "id": found["id"]}
                )

        max_total = settings.get("max_total")
        total = next((d for d in nodes if d.get("schema_id") == "amount_total"), None)
        if max_total is not None and total is not None:
            normalized = (value_of(total) or "").replace(" ", "").replace(",", ".")
            if not NUMBER.fullmatch(normalized):
                messages.append(
                    {"type": "error", "content": "amount_total is not a number", "id": total["id"]}
                )
            elif Decimal(normalized) > max_total:
                messages.append(
                    {
                        "type": "warning",
                        "content": f"amount_total exceeds {max_total}",
                        "id": total["id"],
                    }
                )

        currency_field = settings.get("currency_field")
        for datapoint in nodes:
            value = value_of(datapoint)
            if currency_field is None or datapoint.get("schema_id") != currency_field or value is None:
                continue
            normalized = value.strip().translate(ASCII_UPPER)
            if normalized != value:
                operations.append(
                    {
                        "op": "replace",
                        "id": datapoint["id"],
                        "value": {"content": {"value": normalized}},
                    }
                )

        host.log(types.Level.INFO, f"checked {len(nodes)} datapoints")
        return json.dumps({"messages": messages, "operations": operations})


# Upper-cases ASCII letters only, as the specification asks (str.upper would also change é).
ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
