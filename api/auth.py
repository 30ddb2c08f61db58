"""JWT bearer authentication: fixed algorithm, required exp, checked audience and issuer (RFC 8725)."""

from __future__ import annotations

import time
from collections import OrderedDict

import jwt
from aiohttp import web

from api.errors import ApiError
from pipeline.settings import Settings

# One symmetric algorithm, fixed: the token's own "alg" header never chooses (RFC 8725 2.1).
ALGORITHMS = ["HS256"]
LEEWAY_S = 30


# Verified tokens remembered per process: a client sends the same token with every request, and
# verifying costs ~45-95 us of CPU (HMAC, two JSON documents, PyJWT's key checks). Only tokens that
# passed verification are kept, and their exp is checked again on every use.
VERIFIED_CACHE = 10_000


class Authenticator:
    def __init__(self, settings: Settings) -> None:
        self._secret = settings.require_jwt_secret()  # refuses to start with a weak secret
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._verified: OrderedDict[str, tuple[int, int, frozenset[str]]] = OrderedDict()  # token -> (user, exp, roles)

    def user_id(self, request: web.Request) -> int:
        """The token's subject; 401 for anything short of a valid bearer token."""
        return self.identify(request)[0]

    def identify(self, request: web.Request) -> tuple[int, frozenset[str]]:
        """The token's subject and roles (claim `roles`, a list of names such as "moderator",
        granted by whoever issues tokens); 401 for anything short of a valid bearer token."""
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise _unauthorized("missing bearer token")
        token = token.strip()
        hit = self._verified.get(token)
        if hit is not None:
            user_id, exp, roles = hit
            if time.time() < exp + LEEWAY_S:
                self._verified.move_to_end(token)
                return user_id, roles
            del self._verified[token]
        try:
            claims = jwt.decode(
                token, self._secret, algorithms=ALGORITHMS, audience=self._audience,
                issuer=self._issuer, leeway=LEEWAY_S, options={"require": ["exp", "iat", "sub", "aud", "iss"]},
            )
        except jwt.PyJWTError as exc:
            raise _unauthorized(f"invalid token: {exc}") from None
        sub = claims["sub"]
        if not isinstance(sub, str) or not sub.isdigit():
            raise _unauthorized("invalid token: subject is not a user id")
        raw_roles = claims.get("roles", [])
        if not isinstance(raw_roles, list) or not all(isinstance(r, str) for r in raw_roles):
            raise _unauthorized("invalid token: roles is not a list of names")
        roles = frozenset(raw_roles)
        self._verified[token] = (int(sub), int(claims["exp"]), roles)
        if len(self._verified) > VERIFIED_CACHE:
            self._verified.popitem(last=False)
        return int(sub), roles


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": 'Bearer realm="starling"'})


def require_role(roles: frozenset[str], role: str) -> None:
    """403 unless the token carries `role`."""
    if role not in roles:
        raise ApiError(403, "forbidden", f"this operation needs the {role} role", field="role")


def mint_token(settings: Settings, user_id: int, ttl_s: int = 3600, now: int | None = None,
               roles: tuple[str, ...] = ()) -> str:
    """DEVELOPMENT ONLY (`starling token`): a token for any user id, signed with the local secret."""
    issued = int(time.time()) if now is None else now
    claims: dict[str, object] = {"sub": str(user_id), "iat": issued, "exp": issued + ttl_s,
                                 "aud": settings.jwt_audience, "iss": settings.jwt_issuer}
    if roles:
        claims["roles"] = list(roles)
    return jwt.encode(claims, settings.require_jwt_secret(), algorithm=ALGORITHMS[0])
