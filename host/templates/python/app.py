"""{{name}}: a wasmhook extension. It answers every event with a greeting; change `handle`
to do your work. `wasmhook run` calls it locally as a hook would."""

import json

import wit_world
from componentize_py_types import Err
from wit_world.imports import host, types


class WitWorld(wit_world.WitWorld):
    def handle(self, request: types.Request) -> str:
        """One hook call: `request.payload` is the whole payload as JSON text (Rossum's
        shape), `request.settings` the hook's settings. Return the response as JSON text;
        raise Err(message) to fail the call with that message."""
        try:
            settings = json.loads(request.settings)
        except ValueError as error:
            raise Err(f"the settings are not JSON: {error}")
        greeting = settings.get("greeting", "Hello")
        host.log(types.Level.INFO, greeting)
        message = {"type": "info", "content": f"{greeting}, {request.event}.{request.action}!"}
        return json.dumps({"messages": [message], "operations": []})
