"""JWT checks: only a valid, unexpired HS256 token for our audience and issuer names a user."""

import time

import jwt
import pytest
from aiohttp.test_utils import make_mocked_request

from api.auth import Authenticator, mint_token
from api.errors import ApiError
from pipeline.errors import SettingsError
from pipeline.settings import Settings

SECRET = "s" * 40
S = Settings.from_env({"STARLING_JWT_SECRET": SECRET})


def _req(header=None):
    return make_mocked_request("GET", "/", headers={"Authorization": header} if header else {})


def _token(**over):
    now = int(time.time())
    claims = {"sub": "42", "iat": now, "exp": now + 60, "aud": S.jwt_audience, "iss": S.jwt_issuer}
    claims.update(over)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, SECRET, algorithm="HS256")


def test_valid_token_names_its_subject():
    assert Authenticator(S).user_id(_req(f"Bearer {mint_token(S, 42)}")) == 42


def test_roles_come_from_the_roles_claim():
    auth = Authenticator(S)
    assert auth.identify(_req(f"Bearer {mint_token(S, 7, roles=('moderator',))}")) == (7, frozenset({"moderator"}))
    assert auth.identify(_req(f"Bearer {mint_token(S, 8)}")) == (8, frozenset())
    token = mint_token(S, 7, roles=("moderator",))
    assert auth.identify(_req(f"Bearer {token}"))[1] == {"moderator"}, "remembered tokens keep their roles"


def test_roles_that_are_not_a_list_of_names_are_401():
    with pytest.raises(ApiError) as err:
        Authenticator(S).identify(_req(f"Bearer {_token(roles='moderator')}"))
    assert err.value.status == 401


@pytest.mark.parametrize("header", [
    None, "Basic abc", "Bearer ", "Bearer not.a.token",
    f"Bearer {_token(exp=int(time.time()) - 3600)}",           # expired
    f"Bearer {_token(exp=None)}",                                # no exp
    f"Bearer {_token(aud='someone-else')}",
    f"Bearer {_token(iss='mallory')}",
    f"Bearer {_token(sub='alice')}",
    "Bearer " + jwt.encode({"sub": "42", "exp": int(time.time()) + 60, "iat": int(time.time()),
                            "aud": S.jwt_audience, "iss": S.jwt_issuer}, "x" * 40, algorithm="HS256"),
    "Bearer " + jwt.encode({"sub": "42", "exp": int(time.time()) + 60}, None, algorithm="none"),
])
def test_anything_else_is_401(header):
    with pytest.raises(ApiError) as info:
        Authenticator(S).user_id(_req(header))
    assert info.value.status == 401 and info.value.code == "unauthorized"


def test_tampered_payload_is_401():
    head, body, sig = mint_token(S, 42).split(".")
    forged = jwt.encode({"sub": "43"}, "k" * 40).split(".")[1]
    with pytest.raises(ApiError):
        Authenticator(S).user_id(_req(f"Bearer {head}.{forged}.{sig}"))


def test_refuses_to_start_with_a_weak_secret():
    with pytest.raises(SettingsError, match="STARLING_JWT_SECRET"):
        Authenticator(Settings.from_env({"STARLING_JWT_SECRET": "too-short"}))


def test_a_remembered_token_is_verified_again_once_its_exp_passed(monkeypatch):
    import api.auth

    calls = []
    real_decode = jwt.decode
    monkeypatch.setattr(api.auth.jwt, "decode", lambda *a, **k: (calls.append(1), real_decode(*a, **k))[1])
    auth = Authenticator(S)
    token = _token()
    assert auth.user_id(_req(f"Bearer {token}")) == 42
    assert auth.user_id(_req(f"Bearer {token}")) == 42
    assert len(calls) == 1, "the second use is served from the cache"
    auth._verified[token] = (42, int(time.time()) - 3600, frozenset())  # as if its exp had passed
    assert auth.user_id(_req(f"Bearer {token}")) == 42
    assert len(calls) == 2, "an expired entry is never served"


def test_a_failed_token_is_never_remembered():
    auth = Authenticator(S)
    bad = _token(aud="someone-else")
    for _ in range(2):
        with pytest.raises(ApiError):
            auth.user_id(_req(f"Bearer {bad}"))
    assert bad not in auth._verified
