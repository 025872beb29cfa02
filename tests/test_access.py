"""The access layer alone: scope grammar, grants, token records, the registry, the throttle."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelshelf.access import (
    EVERYTHING,
    Action,
    FailedAttempts,
    ForbiddenError,
    Grant,
    InvalidScopeError,
    Scope,
    TokenNotFoundError,
    TokenRegistry,
    TooManyAttemptsError,
    UnauthorizedError,
)
from modelshelf.access.scopes import parse_scopes
from modelshelf.access.tokens import parse_token
from modelshelf.backends.memory import MemoryBackend
from modelshelf.backends.ops import iter_keys, read_all

STORES = ("indexeddb", "file")

# -- scopes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fix"),
    [
        ("read", "ACTION:STORE"),
        ("read:", "ACTION:STORE"),
        ("wrte:indexeddb", "use one of read, write, delete, admin"),
        (":indexeddb", "use one of"),
        ("read:/m", "names no store"),
        ("read:indexeddb/", "invalid model name"),
        ("read:indexeddb/~v/x", "reserved"),
        ("read:indexeddb/a//b", "invalid model name"),
    ],
)
def test_a_malformed_scope_says_what_to_fix(text: str, fix: str) -> None:
    with pytest.raises(InvalidScopeError) as raised:
        Scope.parse(text)
    assert fix in str(raised.value)


# (scope, action, store, name, allowed)
COVERAGE = [
    ("read:*", Action.READ, "indexeddb", "m", True),
    ("read:*", Action.WRITE, "indexeddb", "m", False),
    ("read:*", Action.READ, "indexeddb", None, True),
    ("read:indexeddb", Action.READ, "file", "m", False),
    ("read:indexeddb/m", Action.READ, "indexeddb", "m", True),
    ("read:indexeddb/m", Action.READ, "indexeddb", "m2", False),
    ("read:indexeddb/m", Action.READ, "indexeddb", "m/x", False),
    ("read:indexeddb/m", Action.READ, "indexeddb", None, False),
    ("write:indexeddb/team/*", Action.WRITE, "indexeddb", "team/a", True),
    ("write:indexeddb/team/*", Action.WRITE, "indexeddb", "team/a/b", True),
    ("write:indexeddb/team/*", Action.WRITE, "indexeddb", "teams", False),
    ("write:indexeddb/team/*", Action.WRITE, "indexeddb", "team", False),
    ("write:indexeddb/te*", Action.WRITE, "indexeddb", "teams", True),
    ("write:*/team/*", Action.WRITE, "file", "team/a", True),
    ("write:indexeddb", Action.DELETE, "indexeddb", "m", False),
    ("delete:indexeddb", Action.WRITE, "indexeddb", "m", False),
    ("delete:indexeddb", Action.READ, "indexeddb", "m", False),
    ("admin:indexeddb", Action.DELETE, "indexeddb", "m", True),
    ("admin:indexeddb", Action.READ, "indexeddb", "m", True),
    ("admin:indexeddb", Action.ADMIN, "*", None, False),
    ("admin:*", Action.ADMIN, "*", None, True),
    ("admin:indexeddb/team/*", Action.WRITE, "indexeddb", "other", False),
]


@pytest.mark.parametrize(("scope", "action", "store", "name", "allowed"), COVERAGE)
def test_what_a_scope_covers(
    scope: str, action: Action, store: str, name: str | None, allowed: bool
) -> None:
    assert Scope.parse(scope).covers(action, store, name) is allowed


_SEGMENT = st.text(st.sampled_from("abcz019-_.é "), min_size=1, max_size=8).filter(
    lambda s: s not in (".", "..", "model.json")
)
_NAME = st.lists(_SEGMENT, min_size=1, max_size=3).map("/".join)
_SCOPE_TEXT = st.builds(
    lambda action, store, name: f"{action}:{store}{name}",
    st.sampled_from([a.value for a in Action]),
    st.sampled_from(["*", "indexeddb", "file"]),
    st.one_of(
        st.just(""),
        _NAME.map(lambda n: f"/{n}"),
        _NAME.map(lambda n: f"/{n}*"),
        _NAME.map(lambda n: f"/{n}/*"),
    ),
)


@given(_SCOPE_TEXT)
def test_a_scope_reads_back_as_written(text: str) -> None:
    assert str(Scope.parse(text)) == text


@given(_SCOPE_TEXT, _NAME)
def test_no_action_but_admin_implies_another(text: str, name: str) -> None:
    scope = Scope.parse(text)
    for action in Action:
        if action is not scope.action and scope.action is not Action.ADMIN:
            assert not scope.covers(action, "indexeddb", name)


def test_a_refusal_names_the_missing_scope_and_the_held_ones() -> None:
    grant = Grant(parse_scopes(["read:*", "write:indexeddb/team/*"]), token_id="t")
    with pytest.raises(ForbiddenError) as raised:
        grant.require(Action.WRITE, "indexeddb", "prod")
    message = str(raised.value)
    assert "write:indexeddb/prod" in message
    assert "read:*, write:indexeddb/team/*" in message


def test_a_share_grant_reads_exactly_its_model_and_version() -> None:
    grant = Grant(
        parse_scopes(["read:indexeddb/m*"]),  # even a scope wider than the model
        token_id="s",
        only_model=("indexeddb", "m*"),
        only_version="v1",
    )
    assert grant.allows(Action.READ, "indexeddb", "m*", "v1")
    assert not grant.allows(Action.READ, "indexeddb", "m*x", "v1")
    assert not grant.allows(Action.READ, "indexeddb", "m*", "v2")
    assert not grant.allows(Action.READ, "indexeddb", "m*", None)
    assert not grant.may_read("indexeddb", "m*")
    with pytest.raises(ForbiddenError, match=r"\?version=v1"):
        grant.require(Action.READ, "indexeddb", "m*", "v2")
    assert grant.reaches("indexeddb") and not grant.reaches("file")


def test_everything_allows_every_action_everywhere() -> None:
    for action in Action:
        assert EVERYTHING.allows(action, "any-store", "any/model")
    assert EVERYTHING.allows(Action.ADMIN, "*")


# -- the registry ---------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 2, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def backend() -> MemoryBackend:
    return MemoryBackend()


@pytest.fixture
def registry(backend: MemoryBackend, clock: Clock) -> TokenRegistry:
    return TokenRegistry(backend, "the-admin-token", clock=clock)


async def test_the_admin_token_holds_everything(registry: TokenRegistry) -> None:
    assert await registry.authenticate("the-admin-token") is EVERYTHING
    with pytest.raises(UnauthorizedError, match="malformed"):
        await registry.authenticate("the-admin-token!")


async def test_an_issued_token_carries_its_scopes(registry: TokenRegistry) -> None:
    record, token = await registry.create(
        "ci", ["write:indexeddb/team/*"], None, EVERYTHING, STORES
    )
    grant = await registry.authenticate(token)
    assert grant.token_id == record.id
    assert grant.allows(Action.WRITE, "indexeddb", "team/a")
    assert not grant.allows(Action.READ, "indexeddb", "team/a")


async def test_only_a_hash_of_the_secret_is_stored(
    registry: TokenRegistry, backend: MemoryBackend
) -> None:
    _, token = await registry.create("ci", ["read:*"], None, EVERYTHING, STORES)
    token_id, secret = parse_token(token) or ("", "")
    stored = [await read_all(backend, item.key) async for item in iter_keys(backend)]
    assert len(stored) == 1
    assert secret.encode() not in stored[0] and token.encode() not in stored[0]
    assert token_id.encode() in stored[0]


async def test_a_wrong_secret_for_a_real_id_is_refused(registry: TokenRegistry) -> None:
    _, token = await registry.create("ci", ["read:*"], None, EVERYTHING, STORES)
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    with pytest.raises(UnauthorizedError, match="revoked, or this server never issued"):
        await registry.authenticate(forged)


async def test_a_token_expires(registry: TokenRegistry, clock: Clock) -> None:
    record, token = await registry.create("ci", ["read:*"], 60, EVERYTHING, STORES)
    assert record.expires_at == clock.now + timedelta(seconds=60)
    await registry.authenticate(token)
    clock.now += timedelta(seconds=60)
    with pytest.raises(UnauthorizedError, match="expired"):
        await registry.authenticate(token)


@pytest.mark.parametrize(
    ("scopes", "fix"),
    [([], "at least one scope"), (["read:nope"], "use one of file, indexeddb"), (["x"], "ACTION")],
)
async def test_a_token_with_bad_scopes_is_not_issued(
    registry: TokenRegistry, backend: MemoryBackend, scopes: list[str], fix: str
) -> None:
    with pytest.raises(InvalidScopeError, match=fix):
        await registry.create("ci", scopes, None, EVERYTHING, STORES)
    assert [item async for item in iter_keys(backend)] == []


async def test_revocation_reaches_another_replica_within_its_cache_interval(
    backend: MemoryBackend, clock: Clock
) -> None:
    one = TokenRegistry(backend, None, clock=clock)
    other = TokenRegistry(backend, None, clock=clock, cache_seconds=0.2)
    record, token = await one.create("ci", ["read:*"], None, EVERYTHING, STORES)
    await other.authenticate(token)  # cached on the other replica now
    await one.revoke(record.id)
    with pytest.raises(UnauthorizedError):
        await one.authenticate(token)  # at once where it was revoked
    await other.authenticate(token)  # still cached there...
    import asyncio

    await asyncio.sleep(0.25)
    with pytest.raises(UnauthorizedError):
        await other.authenticate(token)  # ...but not past the interval


async def test_revoking_an_unknown_token_is_404(registry: TokenRegistry) -> None:
    for token_id in ("0123456789abcdef", "../../etc", ""):
        with pytest.raises(TokenNotFoundError, match="GET /v1/tokens"):
            await registry.revoke(token_id)


async def test_a_share_link_never_outlives_the_token_that_made_it(
    registry: TokenRegistry, clock: Clock
) -> None:
    parent_record, parent_token = await registry.create("ci", ["read:*"], 600, EVERYTHING, STORES)
    parent = await registry.authenticate(parent_token)
    record, token = await registry.share("indexeddb", "m", None, 3600, parent)
    assert record.expires_at == parent_record.expires_at
    shared = await registry.authenticate(token)
    assert shared.only_model == ("indexeddb", "m")
    await registry.revoke(parent_record.id)
    with pytest.raises(UnauthorizedError, match="share link ended"):
        await registry.authenticate(token)


async def test_the_admins_share_link_lasts_as_asked(registry: TokenRegistry, clock: Clock) -> None:
    record, _ = await registry.share("indexeddb", "m", "v1", 3600, EVERYTHING)
    assert record.expires_at == clock.now + timedelta(seconds=3600)
    assert record.version == "v1" and record.parent_id is None


async def test_tokens_list_oldest_first(registry: TokenRegistry, clock: Clock) -> None:
    for name in ("a", "b", "c"):
        await registry.create(name, ["read:*"], None, EVERYTHING, STORES)
        clock.now += timedelta(seconds=1)
    assert [record.name for record in await registry.tokens()] == ["a", "b", "c"]


# -- failed attempts ------------------------------------------------------------------------


def test_more_than_the_limit_of_failures_locks_an_address_out_for_the_window() -> None:
    now = [0.0]
    attempts = FailedAttempts(limit=3, window=60, clock=lambda: now[0])
    for second in range(4):
        attempts.check("10.0.0.1")
        now[0] = float(second)
        attempts.record_failure("10.0.0.1")
    with pytest.raises(TooManyAttemptsError) as raised:
        attempts.check("10.0.0.1")
    assert raised.value.retry_after_seconds == 57  # it is t=3; the 1st of the 4 leaves at 60
    attempts.check("10.0.0.2")  # other addresses are not affected
    now[0] = 60.0
    attempts.check("10.0.0.1")  # three failures left in the window: allowed again


async def test_listing_sweeps_long_expired_tokens_and_orphaned_share_links(
    registry: TokenRegistry, backend: MemoryBackend, clock: Clock
) -> None:
    await registry.create("short", ["read:*"], 60, EVERYTHING, STORES)
    parent_record, parent_token = await registry.create("ci", ["read:*"], None, EVERYTHING, STORES)
    await registry.share("indexeddb", "m", None, 3600, await registry.authenticate(parent_token))
    await registry.create("kept", ["read:*"], None, EVERYTHING, STORES)
    clock.now += timedelta(days=1)
    assert len(await registry.tokens()) == 4  # an expired token stays listed for a while
    await registry.revoke(parent_record.id)
    clock.now += timedelta(days=7)
    assert [record.name for record in await registry.tokens()] == ["kept"]
    assert len([item async for item in iter_keys(backend)]) == 1
