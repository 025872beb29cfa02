"""Scopes (``ACTION:STORE[/NAME]``) and the grant a token carries.

- ACTION is ``read``, ``write``, ``delete`` or ``admin``; ``admin`` implies the others and
  no other action implies another.
- STORE is a store name or ``*``.
- NAME is a full model name, or a name prefix ending in ``*``; without it, every model.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from modelshelf.access.errors import ForbiddenError, InvalidScopeError
from modelshelf.modelstore.errors import InvalidNameError
from modelshelf.modelstore.layout import validate_model_name

ANY_STORE = "*"
PREFIX_MARK = "*"


class Action(StrEnum):
    READ = "read"
    WRITE = "write"
    DELETE = "delete"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Scope:
    """One permission: an action on a store, on every model or on some of them."""

    action: Action
    store: str
    name: str | None = None

    @classmethod
    def parse(cls, text: str) -> Scope:
        """The scope ``text`` spells; raises InvalidScopeError saying what to fix."""
        action_text, colon, target = text.partition(":")
        if not colon or not target:
            raise InvalidScopeError(
                f"scope {text!r} is not ACTION:STORE[/NAME], e.g. 'read:*' or "
                f"'write:indexeddb/team/*'"
            )
        try:
            action = Action(action_text)
        except ValueError:
            actions = ", ".join(action.value for action in Action)
            raise InvalidScopeError(
                f"scope {text!r} has the action {action_text!r}; use one of {actions}"
            ) from None
        store, slash, name = target.partition("/")
        if not store:
            raise InvalidScopeError(f"scope {text!r} names no store; use a store name or '*'")
        if slash:
            _check_name(text, name)
        return cls(action, store, name if slash else None)

    def __str__(self) -> str:
        return f"{self.action}:{self.store}" + (f"/{self.name}" if self.name is not None else "")

    def covers(self, action: Action, store: str, name: str | None) -> bool:
        """Whether this scope allows ``action`` on ``store`` (and on model ``name``, if given).

        ``name=None`` asks about the whole store, which only a scope without NAME covers.
        """
        if self.action not in (action, Action.ADMIN):
            return False
        if self.store not in (ANY_STORE, store):
            return False
        if self.name is None:
            return True
        if name is None:
            return False
        if self.name.endswith(PREFIX_MARK):
            return name.startswith(self.name[: -len(PREFIX_MARK)])
        return name == self.name

    def reaches(self, store: str) -> bool:
        return self.store in (ANY_STORE, store)


def _check_name(text: str, name: str) -> None:
    prefix = name.removesuffix(PREFIX_MARK)
    if name == PREFIX_MARK:
        return
    try:
        # A prefix is checked as the shortest name that could start with it.
        validate_model_name(prefix + "x" if name.endswith(PREFIX_MARK) else name)
    except InvalidNameError as error:
        raise InvalidScopeError(f"scope {text!r}: {error}") from None


def parse_scopes(texts: Iterable[str]) -> tuple[Scope, ...]:
    return tuple(Scope.parse(text) for text in texts)


@dataclass(frozen=True, slots=True)
class Grant:
    """What one request may do: its token's scopes, narrowed further for a share link.

    Attributes:
        scopes: the token's scopes.
        token_id: the stored token's id; None for the admin token and with tokens off.
        only_model: a share link reads exactly this ``(store, name)``.
        only_version: a share link made for one version reads only that version.
    """

    scopes: tuple[Scope, ...]
    token_id: str | None = None
    only_model: tuple[str, str] | None = None
    only_version: str | None = None

    def allows(
        self, action: Action, store: str, name: str | None = None, version: str | None = None
    ) -> bool:
        if self.only_model is not None and self.only_model != (store, name):
            return False
        if self.only_version is not None and version != self.only_version:
            return False
        return any(scope.covers(action, store, name) for scope in self.scopes)

    def require(
        self, action: Action, store: str, name: str | None = None, version: str | None = None
    ) -> None:
        """Raise ForbiddenError naming the missing scope unless the grant allows this."""
        if self.allows(action, store, name, version):
            return
        if self.only_version is not None and self.only_model == (store, name):
            raise ForbiddenError(
                f"this share link reads only version {self.only_version} of {store}://{name}; "
                f"ask for it with ?version={self.only_version}"
            )
        needed = Scope(action, store, name)
        held = ", ".join(map(str, self.scopes)) or "none"
        if self.only_model is not None:
            held = f"a share link of {self.only_model[0]}://{self.only_model[1]}"
        raise ForbiddenError(f"this needs the scope {needed} (the token has {held})")

    def may_read(self, store: str, name: str) -> bool:
        """Whether a listing shows this model (its current version, so not a version's link)."""
        return self.only_version is None and self.allows(Action.READ, store, name)

    def may_any(self, action: Action, store: str) -> bool:
        """Whether ``action`` is allowed on some model of ``store`` (a scope with NAME counts)."""
        if self.only_model is not None:
            return self.only_model[0] == store and self.allows(action, *self.only_model)
        return any(s.action in (action, Action.ADMIN) and s.reaches(store) for s in self.scopes)

    def reaches(self, store: str) -> bool:
        """Whether any scope of the grant concerns ``store`` (it is then listed)."""
        if self.only_model is not None:
            return self.only_model[0] == store
        return any(scope.reaches(store) for scope in self.scopes)


EVERYTHING = Grant((Scope(Action.ADMIN, ANY_STORE),))
NOTHING = Grant(())
