"""hello: answers every event with a greeting (see conformance/README.md).

Built into a component of the `extension` world with componentize-py; `build.sh` says how.
"""

import json

import wit_world
from wit_world.imports import host, types


class WitWorld(wit_world.WitWorld):
    def handle(self, request: types.Request) -> str:
        settings = json.loads(request.settings)
        greeting = settings.get("greeting", "Hello")
        host.log(types.Level.INFO, greeting)
        message = {"type": "info", "content": f"{greeting}, {request.event}.{request.action}!"}
        return json.dumps({"messages": [message], "operations": []})
