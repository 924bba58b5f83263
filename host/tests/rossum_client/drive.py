#!/usr/bin/env python3
"""Drives a running `wasmhook serve` with Rossum's own Python client, `rossum-api`.

Usage:  drive.py GROUP...     (or `all`; `--groups` lists them)

Each group is a set of calls a Rossum user makes with the client; every object the client
returns goes through the client's own models (dacite dataclasses, `deserialize_default`)
and must hold the values we sent. One line is printed per check ("ok" and what was
checked); at the first failure the script prints "FAIL", the call, what the server
answered (or why the client could not parse it, with the JSON it was given) and exits 1.

The environment names the server and an organization to work in:
  WASMHOOK_URL              the API's base, ending in /api/v1
  WASMHOOK_USERNAME         an admin of the organization, and
  WASMHOOK_PASSWORD         their password
  WASMHOOK_ORGANIZATION     the organization's name
  WASMHOOK_OPERATOR_TOKEN   the operator's token (creating organizations is theirs)
  WASMHOOK_HELLO_MODULE     the URL of an uploaded `hello` module (hooks, pages, run_data)
  WASMHOOK_HOSTILE_MODULE   the URL of an uploaded `hostile` module (run_data)
The run_data group starts a webhook receiver on 127.0.0.1: the server must allow private
addresses and plain-http webhooks (WASMHOOK_ALLOW_PRIVATE_ADDRESSES,
WASMHOOK_ALLOW_HTTP_WEBHOOKS).

host/tests/all/rossum_client.rs runs one group per test against a fresh server. The
groups also run together against one server (`all`): each works on objects of its own.
"""

from __future__ import annotations

import asyncio
import datetime
import http.server
import json
import math
import os
import sys
import threading
import time
import traceback
import uuid
from typing import Any, Callable

import rossum_api
from rossum_api import APIClientError, AsyncRossumAPIClient, SyncRossumAPIClient
from rossum_api.domain_logic.resources import Resource
from rossum_api.domain_logic.urls import parse_resource_id_from_url
from rossum_api.dtos import Token, UserCredentials
from rossum_api.models import deserialize_default

BASE = os.environ.get("WASMHOOK_URL", "").rstrip("/")
USERNAME = os.environ.get("WASMHOOK_USERNAME", "")
PASSWORD = os.environ.get("WASMHOOK_PASSWORD", "")
ORGANIZATION = os.environ.get("WASMHOOK_ORGANIZATION", "")
OPERATOR_TOKEN = os.environ.get("WASMHOOK_OPERATOR_TOKEN", "")

# A password the server accepts for the users the groups create.
NEW_PASSWORD = "a long enough password"

# Each run's objects carry this in their names, so that runs against one server apart.
RUN = uuid.uuid4().hex[:8]


# ---------------------------------------------------------------------------------------
# Checks


class Failed(Exception):
    """A check that did not hold: what was checked and what was found."""


def ok(description: str) -> None:
    print(f"ok    {description}", flush=True)


def that(description: str, condition: bool, found: Any = None) -> None:
    """Checks a condition; `found` is shown when it does not hold."""
    if not condition:
        raise Failed(f"{description}\n      found: {found!r}")
    ok(description)


def equal(description: str, actual: Any, expected: Any) -> None:
    if actual != expected:
        raise Failed(f"{description}\n      expected: {expected!r}\n      found:    {actual!r}")
    ok(description)


def explain(error: BaseException) -> str:
    """What went wrong in a call, as the client reports it."""
    if isinstance(error, APIClientError):
        return (
            f"HTTP {error.status_code} on {error.method} {error.url}\n      answer: {error.error}"
        )
    if isinstance(error, ModelError):
        return str(error)
    return "".join(traceback.format_exception(error)).rstrip()


def call(description: str, action: Callable[[], Any]) -> Any:
    """Makes one call of the client (lists are read to their end); its result."""
    try:
        result = action()
    except Failed:
        raise
    except Exception as error:  # noqa: BLE001 (every failure of the client is reported)
        raise Failed(f"{description}\n      {explain(error)}") from error
    ok(description)
    return result


def refused(description: str, action: Callable[[], Any], statuses: set[int]) -> APIClientError:
    """Makes a call that must fail with one of `statuses`; the client's error."""
    try:
        result = action()
    except APIClientError as error:
        if error.status_code not in statuses:
            raise Failed(
                f"{description}\n      expected HTTP {sorted(statuses)}\n      {explain(error)}"
            ) from error
        ok(f"{description} (HTTP {error.status_code})")
        return error
    except Exception as error:  # noqa: BLE001
        raise Failed(f"{description}\n      {explain(error)}") from error
    raise Failed(
        f"{description}\n      expected HTTP {sorted(statuses)}, the call succeeded: {result!r}"
    )


# ---------------------------------------------------------------------------------------
# The client


class ModelError(Exception):
    """The client's model could not be built from what the server answered."""


def deserializer(resource: Resource, payload: dict[str, Any]) -> Any:
    """The client's default deserializer, naming the object it could not parse."""
    try:
        return deserialize_default(resource, payload)
    except Exception as error:  # noqa: BLE001
        raise ModelError(
            f"rossum_api cannot parse a {resource.name} ({type(error).__name__}: {error})\n"
            f"      from: {json.dumps(payload, sort_keys=True)}"
        ) from error


def client(
    credentials: UserCredentials | Token | None = None,
    *,
    n_retries: int = 1,
    seen: list[str] | None = None,
) -> SyncRossumAPIClient:
    """A synchronous client as a user makes it: base URL and credentials (the admin's by
    default). No retries, so that a server error is seen rather than retried over; `seen`
    collects every request's method and URL."""

    def record(response: Any) -> None:
        if seen is not None:
            seen.append(f"{response.request.method} {response.request.url}")

    return SyncRossumAPIClient(
        BASE,
        credentials or UserCredentials(USERNAME, PASSWORD),
        deserializer=deserializer,
        timeout=30,
        n_retries=n_retries,
        response_post_processor=record,
    )


def operator() -> SyncRossumAPIClient:
    return client(Token(OPERATOR_TOKEN))


def parse(resource: Resource, payload: dict[str, Any]) -> Any:
    """An answer of a call the client has no method for, through the client's models."""
    return deserializer(resource, payload)


def own_organization_raw(api: SyncRossumAPIClient) -> dict[str, Any]:
    """The admin's organization as JSON, without the client's model (so that a group does
    not depend on another group's shapes to find it)."""
    answer = api.request_json("GET", "organizations")
    return answer["results"][0]


def ids(objects: list[Any]) -> list[int]:
    return [o.id for o in objects]


def module(name: str) -> str:
    url = os.environ.get(name)
    if not url:
        raise Failed(f"{name} is not set: the URL of an uploaded module")
    return url


def function_hook(name: str, module_url: str, **extra: Any) -> dict[str, Any]:
    """The body of a function hook running a wasm module, as Rossum's create takes it."""
    return {
        "name": name,
        "type": "function",
        "active": True,
        "events": ["annotation_content.initialize", "invocation.manual"],
        "queues": [],
        "sideload": [],
        "config": {"runtime": "wasm", "module": module_url, "timeout_s": 5},
        "settings": {},
        **extra,
    }


# ---------------------------------------------------------------------------------------
# Groups


def group_auth() -> None:
    """Login with a password (the client posts a form to auth/login and keeps `key`), a
    token, wrong credentials, and a logged-out token replaced by a new login."""
    api = client()
    call("authenticate() posts username and password to auth/login", api.authenticate)
    token = api.internal_client.token
    that(
        "the login's `key` is the client's token", isinstance(token, str) and len(token) > 0, token
    )
    call("the password client lists hooks with that token", lambda: list(api.list_hooks()))
    by_token = client(Token(token))
    call("a client made with Token(key) lists hooks", lambda: list(by_token.list_hooks()))

    wrong = client(UserCredentials(USERNAME, "not the password"))
    refused("authenticate() with a wrong password is refused", wrong.authenticate, {400, 401})
    nobody = client(Token("not-a-token"))
    refused("a client with an unknown token is refused", lambda: list(nobody.list_hooks()), {401})

    # With a password, a 401 makes the client log in again and retry once.
    again = client(n_retries=2)
    call("a second client logs in", again.authenticate)
    first = again.internal_client.token
    call("auth/logout ends its token", lambda: again.request_json("POST", "auth/logout"))
    call(
        "after a 401 the client logs in again by itself and lists hooks",
        lambda: list(again.list_hooks()),
    )
    that(
        "it holds a new token",
        again.internal_client.token not in (None, first),
        again.internal_client.token,
    )


def group_organizations() -> None:
    """An admin lists and retrieves their own organization (and no other), finds it through
    auth/user; the operator creates, replaces, updates and deletes one."""
    api = client()
    orgs = call("list_organizations()", lambda: list(api.list_organizations()))
    equal("an admin sees one organization, their own", [o.name for o in orgs], [ORGANIZATION])
    acme = orgs[0]
    that("its url names its id", acme.url.endswith(f"/organizations/{acme.id}"), acme.url)
    that("`created_at` is a time", len(acme.created_at) >= 10, acme.created_at)
    got = call(f"retrieve_organization({acme.id})", lambda: api.retrieve_organization(acme.id))
    equal("it is the listed one", (got.id, got.name, got.url), (acme.id, acme.name, acme.url))
    me = call(
        "GET auth/user answers the caller as a User",
        lambda: parse(Resource.User, api.request_json("GET", "auth/user")),
    )
    equal("auth/user is the admin", me.username, USERNAME)
    equal("auth/user names their organization", me.organization, acme.url)
    own = call("retrieve_own_organization()", api.retrieve_own_organization)
    equal("it is the admin's organization", (own.id, own.name), (acme.id, ORGANIZATION))
    that("its `users` lists the admin", me.url in own.users, own.users)

    op = operator()
    name = f"globex {RUN}"
    created = call(
        "the operator creates an organization (POST organizations)",
        lambda: parse(
            Resource.Organization, op.request_json("POST", "organizations", json={"name": name})
        ),
    )
    equal("it has our name", created.name, name)
    listed = call("the operator's list_organizations()", lambda: list(op.list_organizations()))
    that("the operator sees both", {acme.id, created.id} <= set(ids(listed)), ids(listed))
    newest_first = call(
        "list_organizations(ordering=['-id'])",
        lambda: list(op.list_organizations(ordering=["-id"])),
    )
    equal("ordered by id, descending", ids(newest_first), sorted(ids(listed), reverse=True))
    refused(
        "the admin cannot retrieve the other organization",
        lambda: api.retrieve_organization(created.id),
        {403, 404},
    )
    by_operator = call(
        f"the operator's retrieve_organization({created.id})",
        lambda: op.retrieve_organization(created.id),
    )
    equal("it has our name", by_operator.name, name)

    raw = call("read it as JSON", lambda: op.request_json("GET", f"organizations/{created.id}"))
    raw["name"] = f"globex replaced {RUN}"
    replaced = call(
        "the operator writes it back with a new name (PUT)",
        lambda: parse(
            Resource.Organization, op.request_json("PUT", f"organizations/{created.id}", json=raw)
        ),
    )
    equal("the name is replaced", replaced.name, raw["name"])
    patched = call(
        "the operator renames it (PATCH)",
        lambda: parse(
            Resource.Organization,
            op.request_json(
                "PATCH", f"organizations/{created.id}", json={"name": f"globex patched {RUN}"}
            ),
        ),
    )
    equal("the name is updated", patched.name, f"globex patched {RUN}")
    equal(
        "and retrieved so",
        call("retrieve it", lambda: op.retrieve_organization(created.id)).name,
        f"globex patched {RUN}",
    )
    call(
        f"the operator deletes it (DELETE organizations/{created.id})",
        lambda: op.request("DELETE", f"organizations/{created.id}"),
    )
    refused("it is gone", lambda: op.retrieve_organization(created.id), {404})
    remaining = call("list_organizations() again", lambda: list(op.list_organizations()))
    that("it is no longer listed", created.id not in ids(remaining), ids(remaining))


def group_users() -> None:
    """create_new_user with Rossum's fields and `groups`, retrieve_user, list_users, write
    back (PUT), update (PATCH) groups, deactivate, delete."""
    api = client()
    organization = call(
        "find the own organization (GET organizations, as JSON)", lambda: own_organization_raw(api)
    )
    roles = call("list_user_roles()", lambda: list(api.list_user_roles()))
    by_name = {role.name: role.url for role in roles}
    that("there is an `admin` role", "admin" in by_name, sorted(by_name))

    ann_name = f"ann-{RUN}"
    ann = call(
        "create_new_user() with first and last name, email and organization",
        lambda: api.create_new_user(
            {
                "username": ann_name,
                "password": NEW_PASSWORD,
                "email": f"{ann_name}@acme.example",
                "first_name": "Ann",
                "last_name": "Example",
                "organization": organization["url"],
            }
        ),
    )
    equal(
        "it has our values",
        (ann.username, ann.email, ann.first_name, ann.last_name, ann.organization),
        (ann_name, f"{ann_name}@acme.example", "Ann", "Example", organization["url"]),
    )
    that("it is active", ann.is_active is True, ann.is_active)
    that("`date_joined` is a time", len(ann.date_joined) >= 10, ann.date_joined)
    that("no password is shown", ann.password is None, ann.password)
    that(
        "its `groups` are listed roles",
        ann.groups and set(ann.groups) <= set(by_name.values()),
        ann.groups,
    )
    that("a new user is not an admin", by_name["admin"] not in ann.groups, ann.groups)
    member_groups = ann.groups

    bob_name = f"bob-{RUN}"
    bob = call(
        "create_new_user() with Rossum's `groups` (the admin role)",
        lambda: api.create_new_user(
            {
                "username": bob_name,
                "password": NEW_PASSWORD,
                "email": f"{bob_name}@acme.example",
                "first_name": "Bob",
                "last_name": "Example",
                "organization": organization["url"],
                "groups": [by_name["admin"]],
            }
        ),
    )
    equal("it has the admin role", bob.groups, [by_name["admin"]])

    got = call(f"retrieve_user({ann.id})", lambda: api.retrieve_user(ann.id))
    equal(
        "it is the created user",
        (got.id, got.url, got.username, got.email, got.first_name, got.last_name, got.groups),
        (ann.id, ann.url, ann_name, ann.email, "Ann", "Example", member_groups),
    )
    users = call("list_users()", lambda: list(api.list_users()))
    names = [u.username for u in users]
    that(
        "it lists the admin and both new users", {USERNAME, ann_name, bob_name} <= set(names), names
    )
    ordered = call(
        "list_users(ordering=['-username'])", lambda: list(api.list_users(ordering=["-username"]))
    )
    equal(
        "ordered by username, descending",
        [u.username for u in ordered if u.username in (USERNAME, ann_name, bob_name)],
        [bob_name, ann_name, USERNAME],
    )

    raw = call("read the user as JSON", lambda: api.request_json("GET", f"users/{ann.id}"))
    raw.update({"first_name": "Anne", "email": f"anne-{RUN}@acme.example"})
    replaced = call(
        "write the user back with a new first name and email (PUT)",
        lambda: parse(Resource.User, api.request_json("PUT", f"users/{ann.id}", json=raw)),
    )
    equal(
        "they are replaced, the rest kept",
        (replaced.first_name, replaced.email, replaced.last_name, replaced.username),
        ("Anne", f"anne-{RUN}@acme.example", "Example", ann_name),
    )
    patched = call(
        "update the user's last name and groups (PATCH)",
        lambda: parse(
            Resource.User,
            api.request_json(
                "PATCH", f"users/{bob.id}", json={"last_name": "Other", "groups": member_groups}
            ),
        ),
    )
    equal("they are updated", (patched.last_name, patched.groups), ("Other", member_groups))
    equal(
        "and retrieved so",
        call("retrieve it", lambda: api.retrieve_user(bob.id)).groups,
        member_groups,
    )

    call("the new user logs in", client(UserCredentials(ann_name, NEW_PASSWORD)).authenticate)
    deactivated = call(
        "deactivate the user (PATCH is_active=false)",
        lambda: parse(
            Resource.User, api.request_json("PATCH", f"users/{ann.id}", json={"is_active": False})
        ),
    )
    that("it is inactive", deactivated.is_active is False, deactivated.is_active)
    refused(
        "an inactive user cannot log in",
        client(UserCredentials(ann_name, NEW_PASSWORD)).authenticate,
        {400, 401, 403},
    )
    call(
        "reactivate the user (PATCH is_active=true)",
        lambda: api.request_json("PATCH", f"users/{ann.id}", json={"is_active": True}),
    )
    call("the user logs in again", client(UserCredentials(ann_name, NEW_PASSWORD)).authenticate)

    call(
        f"delete the user (DELETE users/{bob.id})", lambda: api.request("DELETE", f"users/{bob.id}")
    )
    try:
        after = api.retrieve_user(bob.id)
    except APIClientError as error:
        equal("a deleted user is not found", error.status_code, 404)
    else:
        # Rossum keeps deleted users, marked so.
        that("a deleted user is marked deleted", after.deleted is True, after)
    refused(
        "a deleted user cannot log in",
        client(UserCredentials(bob_name, NEW_PASSWORD)).authenticate,
        {400, 401, 403},
    )


def group_queues() -> None:
    """create_new_queue, retrieve_queue, list_queues, write back (PUT), update (PATCH),
    the queue's schema, delete_queue."""
    api = client()
    organization = call(
        "find the own organization (GET organizations, as JSON)", lambda: own_organization_raw(api)
    )
    name = f"Invoices {RUN}"
    queue = call(
        "create_new_queue() with a name and metadata",
        lambda: api.create_new_queue({"name": name, "metadata": {"source": "rossum-api"}}),
    )
    equal("it has our values", (queue.name, queue.metadata), (name, {"source": "rossum-api"}))
    that("its url names its id", queue.url.endswith(f"/queues/{queue.id}"), queue.url)
    that(
        "`counts` is an object of numbers",
        all(isinstance(v, int) for v in queue.counts.values()),
        queue.counts,
    )
    equal("it has no hooks yet", queue.hooks, [])
    schema = call(
        "retrieve_schema() of the queue's `schema`",
        lambda: api.retrieve_schema(parse_resource_id_from_url(queue.schema)),
    )
    that("the schema is a resource of its own", isinstance(schema.id, int), schema)

    got = call(f"retrieve_queue({queue.id})", lambda: api.retrieve_queue(queue.id))
    equal(
        "it is the created queue",
        (got.id, got.url, got.name, got.metadata, got.schema),
        (queue.id, queue.url, name, queue.metadata, queue.schema),
    )
    other = call(
        "create_new_queue() again", lambda: api.create_new_queue({"name": f"Receipts {RUN}"})
    )
    queues = call("list_queues()", lambda: list(api.list_queues()))
    that("it lists both", {queue.id, other.id} <= set(ids(queues)), ids(queues))
    by_name = call(
        "list_queues(ordering=['-name'])", lambda: list(api.list_queues(ordering=["-name"]))
    )
    equal(
        "ordered by name, descending",
        [q.id for q in by_name if q.id in (queue.id, other.id)],
        [other.id, queue.id],
    )
    raw = call("read the queue as JSON", lambda: api.request_json("GET", f"queues/{queue.id}"))
    that("a queue names its organization", raw.get("organization") == organization["url"], raw)

    raw["name"] = f"Invoices replaced {RUN}"
    replaced = call(
        "write the queue back with a new name (PUT)",
        lambda: parse(Resource.Queue, api.request_json("PUT", f"queues/{queue.id}", json=raw)),
    )
    equal(
        "the name is replaced, metadata kept",
        (replaced.name, replaced.metadata),
        (raw["name"], queue.metadata),
    )
    patched = call(
        "update the queue's metadata (PATCH)",
        lambda: parse(
            Resource.Queue,
            api.request_json("PATCH", f"queues/{queue.id}", json={"metadata": {"k": 1}}),
        ),
    )
    equal("it is updated, the name kept", (patched.metadata, patched.name), ({"k": 1}, raw["name"]))

    call(f"delete_queue({other.id})", lambda: api.delete_queue(other.id))
    refused("it is gone", lambda: api.retrieve_queue(other.id), {404})
    call(f"delete_queue({queue.id})", lambda: api.delete_queue(queue.id))
    left = call("list_queues() again", lambda: list(api.list_queues()))
    that("neither is listed", not {queue.id, other.id} & set(ids(left)), ids(left))


def group_hooks() -> None:
    """create_new_hook (a function and a webhook), retrieve_hook, list_hooks with Rossum's
    filters and ordering, update_part_hook, write back (PUT), the queue's side, delete_hook."""
    api = client()
    hello = module("WASMHOOK_HELLO_MODULE")
    queue = call("create_new_queue()", lambda: api.create_new_queue({"name": f"Hooked {RUN}"}))
    name = f"hello {RUN}"
    body = function_hook(
        name,
        hello,
        queues=[queue.url],
        settings={"greeting": "Ahoj"},
        metadata={"owner": "rossum-api"},
        description="made by rossum-api",
    )
    hook = call("create_new_hook() of a function", lambda: api.create_new_hook(body))
    equal(
        "it has our values",
        (
            hook.name,
            hook.type,
            hook.active,
            hook.queues,
            hook.settings,
            hook.metadata,
            hook.description,
        ),
        (
            name,
            "function",
            True,
            [queue.url],
            {"greeting": "Ahoj"},
            {"owner": "rossum-api"},
            "made by rossum-api",
        ),
    )
    equal("its events", [str(e) for e in hook.events], body["events"])
    equal(
        "its config runs our module",
        (hook.config.get("runtime"), hook.config.get("module")),
        ("wasm", hello),
    )
    that("its url names its id", hook.url.endswith(f"/hooks/{hook.id}"), hook.url)

    web_name = f"web {RUN}"
    web = call(
        "create_new_hook() of a webhook",
        lambda: api.create_new_hook(
            {
                "name": web_name,
                "type": "webhook",
                "events": ["annotation_status.changed"],
                "config": {
                    "url": "https://hooks.example.com/rossum",
                    "secret": "a secret of the webhook",
                },
            }
        ),
    )
    equal(
        "it has our values",
        (web.name, web.type, web.config.get("url")),
        (web_name, "webhook", "https://hooks.example.com/rossum"),
    )
    that("its secret is not shown", "secret" not in web.config, web.config)

    got = call(f"retrieve_hook({hook.id})", lambda: api.retrieve_hook(hook.id))
    equal(
        "it is the created hook",
        (got.id, got.url, got.name, got.queues),
        (hook.id, hook.url, name, [queue.url]),
    )
    on_queue = call(f"retrieve_queue({queue.id})", lambda: api.retrieve_queue(queue.id))
    equal("the queue lists the hook", on_queue.hooks, [hook.url])

    hooks = call("list_hooks()", lambda: list(api.list_hooks()))
    that("it lists both", {hook.id, web.id} <= set(ids(hooks)), ids(hooks))
    webhooks = call("list_hooks(type='webhook')", lambda: list(api.list_hooks(type="webhook")))
    that(
        "only webhooks, ours among them",
        web.id in ids(webhooks) and all(h.type == "webhook" for h in webhooks),
        ids(webhooks),
    )
    queued = call(f"list_hooks(queue={queue.id})", lambda: list(api.list_hooks(queue=queue.id)))
    equal("only the queue's hook", ids(queued), [hook.id])
    named = call("list_hooks(name=...)", lambda: list(api.list_hooks(name=web_name)))
    equal("only the hook of that name", ids(named), [web.id])
    newest_first = call(
        "list_hooks(ordering=['-id'])", lambda: list(api.list_hooks(ordering=["-id"]))
    )
    equal("ordered by id, descending", ids(newest_first), sorted(ids(hooks), reverse=True))

    updated = call(
        "update_part_hook() renames and deactivates it",
        lambda: api.update_part_hook(hook.id, {"name": f"hello renamed {RUN}", "active": False}),
    )
    equal(
        "it is updated, the rest kept",
        (updated.name, updated.active, updated.settings),
        (f"hello renamed {RUN}", False, {"greeting": "Ahoj"}),
    )
    inactive = call("list_hooks(active=False)", lambda: list(api.list_hooks(active=False)))
    that(
        "it lists the inactive hook",
        hook.id in ids(inactive) and all(not h.active for h in inactive),
        ids(inactive),
    )

    raw = call("read the hook as JSON", lambda: api.request_json("GET", f"hooks/{hook.id}"))
    raw.update({"name": f"hello replaced {RUN}", "active": True, "settings": {"greeting": "Hej"}})
    replaced = call(
        "write the hook back with a new name and settings (PUT)",
        lambda: parse(Resource.Hook, api.request_json("PUT", f"hooks/{hook.id}", json=raw)),
    )
    equal(
        "it is replaced",
        (replaced.name, replaced.active, replaced.settings, replaced.queues),
        (raw["name"], True, {"greeting": "Hej"}, [queue.url]),
    )

    call(f"delete_hook({web.id})", lambda: api.delete_hook(web.id))
    refused("it is gone", lambda: api.retrieve_hook(web.id), {404})
    call(f"delete_hook({hook.id})", lambda: api.delete_hook(hook.id))
    after = call("retrieve_queue() again", lambda: api.retrieve_queue(queue.id))
    equal("the queue no longer lists it", after.hooks, [])
    call(f"delete_queue({queue.id})", lambda: api.delete_queue(queue.id))


def pages_requested(seen: list[str], path: str) -> list[str]:
    return [
        request
        for request in seen
        if request.startswith("GET ") and request.split("?")[0].endswith(path)
    ]


def group_pages() -> None:
    """Lists over several pages: the client asks page 1 with include_total=true, reads
    pagination.total_pages and asks for every other page by number (the async client
    concurrently), with a small page_size; max_pages stops it early."""
    hello = module("WASMHOOK_HELLO_MODULE")
    api = client()
    organization = call(
        "find the own organization (GET organizations, as JSON)", lambda: own_organization_raw(api)
    )
    queues = [
        call(
            f"create_new_queue() {n} of 7",
            lambda n=n: api.create_new_queue({"name": f"page {RUN} {n}"}),
        )
        for n in range(7)
    ]
    hooks = [
        call(
            f"create_new_hook() {n} of 7",
            lambda n=n: api.create_new_hook(function_hook(f"page {RUN} {n}", hello)),
        )
        for n in range(7)
    ]
    users = [
        call(
            f"create_new_user() {n} of 5",
            lambda n=n: api.create_new_user(
                {
                    "username": f"page-{RUN}-{n}",
                    "password": NEW_PASSWORD,
                    "email": f"page-{RUN}-{n}@acme.example",
                    "first_name": "Page",
                    "last_name": str(n),
                    "organization": organization["url"],
                }
            ),
        )
        for n in range(5)
    ]

    def paged(
        what: str,
        path: str,
        page_size: int,
        list_call: Callable[..., Any],
        ours: list[Any],
        **extra: Any,
    ) -> None:
        seen: list[str] = []
        paging = client(seen=seen)
        listed = call(
            f"{what}(page_size={page_size})",
            lambda: list(list_call(paging)(page_size=page_size, **extra)),
        )
        requests = pages_requested(seen, path)
        ok(f"the client asked: {requests[0] if requests else 'nothing'}")
        that("several pages were asked for", len(requests) > 1, requests)
        equal("one request per page", len(requests), math.ceil(len(listed) / page_size))
        that("every object once", len(set(ids(listed))) == len(listed), ids(listed))
        that(
            "ours among them, in order",
            [i for i in ids(listed) if i in set(ids(ours))] == ids(ours),
            ids(listed),
        )
        that("ordered by id", ids(listed) == sorted(ids(listed)), ids(listed))

    paged("list_queues", "/queues", 2, lambda c: c.list_queues, queues)
    paged("list_hooks", "/hooks", 3, lambda c: c.list_hooks, hooks)
    paged("list_users", "/users", 2, lambda c: c.list_users, users)

    seen: list[str] = []
    limited = client(seen=seen)
    first_two = call(
        "list_queues(page_size=2, max_pages=2)",
        lambda: list(limited.list_queues(page_size=2, max_pages=2)),
    )
    equal("two pages of two", len(first_two), 4)
    equal("two requests", len(pages_requested(seen, "/queues")), 2)

    op = operator()
    organizations = [
        call(
            f"the operator creates organization {n} of 4",
            lambda n=n: parse(
                Resource.Organization,
                op.request_json("POST", "organizations", json={"name": f"page {RUN} {n}"}),
            ),
        )
        for n in range(4)
    ]
    seen = []
    op_paging = client(Token(OPERATOR_TOKEN), seen=seen)
    listed = call(
        "the operator's list_organizations(page_size=2)",
        lambda: list(op_paging.list_organizations(page_size=2)),
    )
    that("several pages were asked for", len(pages_requested(seen, "/organizations")) > 1, seen)
    that(
        "ours among them, in order",
        [i for i in ids(listed) if i in set(ids(organizations))] == ids(organizations),
        ids(listed),
    )

    async def async_queues() -> list[Any]:
        asynchronous = AsyncRossumAPIClient(
            BASE,
            UserCredentials(USERNAME, PASSWORD),
            deserializer=deserializer,
            timeout=30,
            n_retries=1,
        )
        return [queue async for queue in asynchronous.list_queues(page_size=2)]

    synchronous = list(api.list_queues())
    by_async = call(
        "AsyncRossumAPIClient.list_queues(page_size=2), pages fetched together",
        lambda: asyncio.run(async_queues()),
    )
    equal("the same queues in the same order", ids(by_async), ids(synchronous))


class Receiver(http.server.BaseHTTPRequestHandler):
    """A webhook on loopback that answers every call with 200 and no messages."""

    def do_POST(self) -> None:  # noqa: N802 (the name http.server calls)
        self.rfile.read(int(self.headers.get("content-length") or 0))
        body = json.dumps({"messages": []}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def now() -> str:
    """The time now, in RFC 3339 (UTC, microseconds), as the filters take it."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def at(text: str | None) -> datetime.datetime:
    """A time of a run log (RFC 3339), to compare."""
    if not text:
        raise Failed(f"a run log has no time: {text!r}")
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def group_run_data() -> None:
    """list_hook_run_data with each filter the client documents: runs of a function that
    completes, one that fails, a webhook (with a status code), an annotation event and an
    email event on a queue, before and after a moment."""
    hello = module("WASMHOOK_HELLO_MODULE")
    hostile = module("WASMHOOK_HOSTILE_MODULE")
    api = client()
    organization_id = call(
        "find the own organization (GET organizations, as JSON)", lambda: own_organization_raw(api)
    )["id"]
    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    webhook_url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"

    queue = call("create_new_queue()", lambda: api.create_new_queue({"name": f"Logged {RUN}"}))
    greeter = call(
        "create_new_hook() of a function on the queue",
        lambda: api.create_new_hook(
            function_hook(
                f"greeter {RUN}",
                hello,
                queues=[queue.url],
                events=["annotation_content.initialize", "email.received", "invocation.manual"],
                settings={"greeting": f"Hi {RUN}"},
            )
        ),
    )
    failing = call(
        "create_new_hook() of a function that fails",
        lambda: api.create_new_hook(
            function_hook(
                f"failing {RUN}",
                hostile,
                events=["invocation.manual"],
                settings={"behavior": "panic"},
                config={"runtime": "wasm", "module": hostile, "timeout_s": 5, "retry_count": 0},
            )
        ),
    )
    web = call(
        "create_new_hook() of a webhook",
        lambda: api.create_new_hook(
            {
                "name": f"receiver {RUN}",
                "type": "webhook",
                "events": ["invocation.manual"],
                "config": {"url": webhook_url},
            }
        ),
    )
    ours = {greeter.id, failing.id, web.id}

    # Before the moment: an invocation that completes and one that fails.
    call(
        "invoke the function",
        lambda: api.request_json("POST", f"hooks/{greeter.id}/invoke", json={}),
    )
    refused(
        "invoke the failing function",
        lambda: api.request_json("POST", f"hooks/{failing.id}/invoke", json={}),
        {400},
    )
    time.sleep(0.05)
    moment = now()
    time.sleep(0.05)
    # After it: an annotation event and an email event on the queue, and the webhook.
    call(
        "an annotation_content.initialize event on the queue",
        lambda: api.request_json(
            "POST",
            "events",
            json={
                "event": "annotation_content",
                "action": "initialize",
                "queue": queue.url,
                "payload": {"annotation": {"id": 77, "content": []}},
            },
        ),
    )
    call(
        "an email.received event on the queue",
        lambda: api.request_json(
            "POST",
            "events",
            json={
                "event": "email",
                "action": "received",
                "queue": queue.url,
                "payload": {"email": f"{BASE}/emails/55"},
            },
        ),
    )
    call("invoke the webhook", lambda: api.request_json("POST", f"hooks/{web.id}/invoke", json={}))

    logs = call("list_hook_run_data()", lambda: list(api.list_hook_run_data()))
    mine = [log for log in logs if log.hook_id in ours]
    equal("one run log per run", len(mine), 5)
    that(
        "all of our organization",
        all(log.organization_id == organization_id for log in mine),
        [log.organization_id for log in mine],
    )
    equal(
        "newest first",
        [log.hook_id for log in mine],
        [web.id, greeter.id, greeter.id, failing.id, greeter.id],
    )
    webhook_run, email_run, annotation_run, failed_run, invoked_run = mine
    equal(
        "the webhook's run",
        (
            webhook_run.hook_type,
            webhook_run.event,
            webhook_run.action,
            webhook_run.status,
            webhook_run.status_code,
            webhook_run.log_level,
        ),
        ("webhook", "invocation", "manual", "completed", 200, "INFO"),
    )
    equal(
        "the annotation event's run",
        (
            annotation_run.hook_type,
            annotation_run.event,
            annotation_run.action,
            annotation_run.queue_id,
            annotation_run.annotation_id,
        ),
        ("function", "annotation_content", "initialize", queue.id, 77),
    )
    equal(
        "the email event's run",
        (email_run.event, email_run.action, email_run.queue_id, email_run.email_id),
        ("email", "received", queue.id, 55),
    )
    equal(
        "the failed run",
        (failed_run.status, failed_run.log_level, failed_run.hook_type),
        ("failed", "ERROR", "function"),
    )
    equal(
        "the invocation's run",
        (invoked_run.status, invoked_run.log_level, invoked_run.queue_id),
        ("completed", "INFO", None),
    )
    that(
        "the function's message is its answer's",
        f"Hi {RUN}, invocation.manual!" in invoked_run.message,
        invoked_run.message,
    )
    that(
        "each run has a request id, a uuid and its times",
        all(
            log.request_id and log.uuid and log.timestamp and log.start and log.end for log in mine
        ),
        mine,
    )

    def filtered(
        description: str, filters: dict[str, Any], holds: Callable[[Any], bool], expected: list[Any]
    ) -> None:
        found = call(
            f"list_hook_run_data({', '.join(f'{k}={v!r}' for k, v in filters.items())})",
            lambda: list(api.list_hook_run_data(**filters)),
        )
        that(
            f"  every log answered is {description}",
            all(holds(log) for log in found),
            [(log.hook_id, log.uuid) for log in found],
        )
        equal(
            "  ours answered",
            [log.uuid for log in found if log.hook_id in ours],
            [log.uuid for log in expected],
        )

    filtered(
        "of the hook",
        {"hook": greeter.id},
        lambda log: log.hook_id == greeter.id,
        [email_run, annotation_run, invoked_run],
    )
    filtered(
        "of the failing hook",
        {"hook": failing.id},
        lambda log: log.hook_id == failing.id,
        [failed_run],
    )
    filtered("at ERROR", {"log_level": "ERROR"}, lambda log: log.log_level == "ERROR", [failed_run])
    filtered(
        "at INFO",
        {"log_level": "INFO"},
        lambda log: log.log_level == "INFO",
        [webhook_run, email_run, annotation_run, invoked_run],
    )
    filtered(
        "completed",
        {"status": "completed"},
        lambda log: log.status == "completed",
        [webhook_run, email_run, annotation_run, invoked_run],
    )
    filtered("failed", {"status": "failed"}, lambda log: log.status == "failed", [failed_run])
    filtered(
        "answered 200", {"status_code": 200}, lambda log: log.status_code == 200, [webhook_run]
    )
    filtered(
        "of the request",
        {"request_id": annotation_run.request_id},
        lambda log: log.request_id == annotation_run.request_id,
        [annotation_run],
    )
    filtered(
        "of the queue",
        {"queue": queue.id},
        lambda log: log.queue_id == queue.id,
        [email_run, annotation_run],
    )
    filtered(
        "of the annotation",
        {"annotation": 77},
        lambda log: log.annotation_id == 77,
        [annotation_run],
    )
    filtered("of the email", {"email": 55}, lambda log: log.email_id == 55, [email_run])
    after = [webhook_run, email_run, annotation_run]
    before = [failed_run, invoked_run]
    filtered(
        "triggered before the moment",
        {"timestamp_before": moment},
        lambda log: at(log.timestamp) < at(moment),
        before,
    )
    filtered(
        "triggered after the moment",
        {"timestamp_after": moment},
        lambda log: at(log.timestamp) > at(moment),
        after,
    )
    filtered(
        "started before the moment",
        {"start_before": moment},
        lambda log: at(log.start) < at(moment),
        before,
    )
    filtered(
        "started after the moment",
        {"start_after": moment},
        lambda log: at(log.start) > at(moment),
        after,
    )
    filtered(
        "ended before the moment",
        {"end_before": moment},
        lambda log: at(log.end) < at(moment),
        before,
    )
    filtered(
        "ended after the moment", {"end_after": moment}, lambda log: at(log.end) > at(moment), after
    )
    filtered(
        "matching the search",
        {"search": f"Hi {RUN}, email.received!"},
        lambda log: True,
        [email_run],
    )
    filtered(
        "of the hook and the queue",
        {"hook": greeter.id, "queue": queue.id},
        lambda log: log.hook_id == greeter.id and log.queue_id == queue.id,
        [email_run, annotation_run],
    )
    newest = call(
        "list_hook_run_data(page_size=2)", lambda: list(api.list_hook_run_data(page_size=2))
    )
    equal("  the two newest", [log.uuid for log in newest], [log.uuid for log in logs[:2]])
    receiver.shutdown()


def group_roles() -> None:
    """list_user_roles (GET groups): Rossum's groups; the admin's `groups` name one."""
    api = client()
    roles = call("list_user_roles()", lambda: list(api.list_user_roles()))
    that("there are roles", len(roles) > 0, roles)
    names = [role.name for role in roles]
    that("`admin` is one of them", "admin" in names, names)
    that(
        "each url names its id",
        all(role.url.endswith(f"/groups/{role.id}") for role in roles),
        [r.url for r in roles],
    )
    by_name = call(
        "list_user_roles(ordering=['name'])", lambda: list(api.list_user_roles(ordering=["name"]))
    )
    equal("ordered by name", [role.name for role in by_name], sorted(names))
    admin_url = next(role.url for role in roles if role.name == "admin")
    users = call("GET users, as JSON", lambda: api.request_json("GET", "users")["results"])
    listed = [u for u in users if u.get("username") == USERNAME]
    that("the admin is listed", len(listed) == 1, listed)
    me = call(f"retrieve_user({listed[0]['id']})", lambda: api.retrieve_user(listed[0]["id"]))
    equal("the admin's `groups` is the admin role", me.groups, [admin_url])


def group_templates() -> None:
    """list_hook_templates (GET hook_templates): Rossum's list shape, each template parsed
    (its id is read from its url); retrieve_hook_template of the first, if any."""
    api = client()
    templates = call("list_hook_templates()", lambda: list(api.list_hook_templates()))
    that("each has a name and a url", all(t.name and t.url for t in templates), templates)
    if not templates:
        ok("no template is registered: an empty list")
        return
    first = templates[0]
    got = call(f"retrieve_hook_template({first.id})", lambda: api.retrieve_hook_template(first.id))
    equal("it is the listed one", (got.id, got.name, got.url), (first.id, first.name, first.url))


GROUPS: dict[str, Callable[[], None]] = {
    "auth": group_auth,
    "organizations": group_organizations,
    "users": group_users,
    "queues": group_queues,
    "hooks": group_hooks,
    "pages": group_pages,
    "run_data": group_run_data,
    "roles": group_roles,
    "templates": group_templates,
}


def main(argv: list[str]) -> int:
    if argv == ["--groups"]:
        print("\n".join(GROUPS))
        return 0
    names = list(GROUPS) if argv == ["all"] else argv
    unknown = [name for name in names if name not in GROUPS]
    if not names or unknown:
        print(
            f"usage: drive.py GROUP... | all   (groups: {', '.join(GROUPS)}); unknown: {unknown}",
            file=sys.stderr,
        )
        return 2
    missing = [
        v
        for v in ("WASMHOOK_URL", "WASMHOOK_USERNAME", "WASMHOOK_PASSWORD")
        if not os.environ.get(v)
    ]
    if missing:
        print(f"set {', '.join(missing)} (see the top of {sys.argv[0]})", file=sys.stderr)
        return 2
    print(f"rossum-api {rossum_api.__version__} against {BASE}", flush=True)
    for name in names:
        print(f"-- {name}", flush=True)
        try:
            GROUPS[name]()
        except Failed as failure:
            print(f"FAIL  {name}: {failure}", flush=True)
            return 1
        except Exception as error:  # noqa: BLE001 (a bug of this script, shown whole)
            print(f"FAIL  {name}: {explain(error)}", flush=True)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
