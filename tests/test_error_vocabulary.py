"""One error vocabulary: ErrorCode holds every code's status, the SDK raises from it."""

from __future__ import annotations

import json

import httpx
import pytest
from pydantic import ValidationError

import modelshelf
from modelshelf.backends.errors import StorageError
from modelshelf.modelstore import errors as model_errors
from modelshelf.schemas.errors import CodedError, ErrorCode, ErrorKind
from modelshelf.service.errors import HttpError
from modelshelf.service.settings import Settings
from tests.support.startup import refused_startup

SDK_CLASS = {
    ErrorKind.INVALID_REQUEST: modelshelf.InvalidRequestError,
    ErrorKind.INVALID_MODEL: modelshelf.InvalidModelError,
    ErrorKind.NOT_FOUND: modelshelf.NotFoundError,
    ErrorKind.UNAUTHORIZED: modelshelf.UnauthorizedError,
    ErrorKind.FORBIDDEN: modelshelf.ForbiddenError,
    ErrorKind.CONFLICT: modelshelf.ConflictError,
    ErrorKind.TOO_LARGE: modelshelf.TooLargeError,
    ErrorKind.QUOTA_EXCEEDED: modelshelf.QuotaExceededError,
    ErrorKind.UNAVAILABLE: modelshelf.UnavailableError,
    ErrorKind.TOO_MANY_REQUESTS: modelshelf.TooManyRequestsError,
    ErrorKind.SERVER_ERROR: modelshelf.ServerError,
}


def _client_answering(code: ErrorCode) -> modelshelf.Client:
    def answer(request: httpx.Request) -> httpx.Response:
        body = {"code": code.value, "message": f"because {code.value}"}
        return httpx.Response(code.status, json=body)

    return modelshelf.Client("http://modelshelf.test", transport=httpx.MockTransport(answer))


@pytest.mark.parametrize("code", list(ErrorCode))
def test_the_sdk_raises_the_exception_of_each_codes_kind(code: ErrorCode) -> None:
    with _client_answering(code) as client, pytest.raises(modelshelf.ModelshelfError) as raised:
        client.get_model_info("indexeddb://m")
    assert type(raised.value) is SDK_CLASS[code.kind]
    assert (raised.value.status, raised.value.code) == (code.status, code.value)
    assert raised.value.message == f"because {code.value}"


def test_client_mistakes_never_answer_5xx() -> None:
    for code in ErrorCode:
        if code.kind in (ErrorKind.INVALID_REQUEST, ErrorKind.INVALID_MODEL, ErrorKind.NOT_FOUND):
            assert 400 <= code.status < 500, code
        if code.status == 500:
            assert code.kind is ErrorKind.SERVER_ERROR, code


def test_every_error_class_has_a_code_of_the_vocabulary() -> None:
    classes = [
        getattr(model_errors, name)
        for name in dir(model_errors)
        if isinstance(getattr(model_errors, name), type)
        and issubclass(getattr(model_errors, name), CodedError)
    ]
    assert len(classes) > 10
    for error_class in classes:
        assert isinstance(error_class.code, ErrorCode), error_class


def test_http_layer_errors_are_not_storage_errors() -> None:
    error = HttpError(ErrorCode.BAD_MULTIPART, "no boundary")
    assert isinstance(error, CodedError)
    assert not isinstance(error, StorageError)
    assert not issubclass(model_errors.InvalidModelError, StorageError)


def test_a_bad_backend_url_is_refused_naming_the_setting() -> None:
    with pytest.raises(ValidationError) as raised:
        Settings(stores={"team": "ftp://somewhere/models"})
    assert "MODELSHELF_STORES['team']" in str(raised.value)
    assert "sqlite://" in str(raised.value)  # and says which schemes exist
    with pytest.raises(ValidationError, match="MODELSHELF_S3_URL"):
        Settings(s3_url="http://bucket")


def test_serve_with_a_bad_backend_url_exits_at_startup_with_the_setting() -> None:
    stderr = refused_startup({"MODELSHELF_STORES": json.dumps({"team": "ftp://x"})})
    assert "MODELSHELF_STORES['team']" in stderr
