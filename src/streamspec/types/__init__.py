"""msgspec Structs for the OpenAI Chat Completions schema, grouped by concept.

* :mod:`.request`: what clients send, validated strictly.
* :mod:`.response`: complete (non-streamed) responses, lenient.
* :mod:`.stream`: streamed chunks, lenient.
* :mod:`.completions`: the legacy text completions API.
* :mod:`.common`: usage, logprobs, tool calls and errors shared by the others.
"""

from .common import *  # noqa: F403
from .common import __all__ as _common_all
from .completions import *  # noqa: F403
from .completions import __all__ as _completions_all
from .request import *  # noqa: F403
from .request import __all__ as _request_all
from .response import *  # noqa: F403
from .response import __all__ as _response_all
from .stream import *  # noqa: F403
from .stream import __all__ as _stream_all

__all__ = [*_common_all, *_request_all, *_response_all, *_stream_all, *_completions_all]
