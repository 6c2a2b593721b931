"""`AsyncClient`: the one implementation of the client (`Client` wraps it)."""

from __future__ import annotations

import enum
from collections.abc import (
    AsyncIterable,
    Iterable,
    Sequence,
)
from types import TracebackType
from typing import Any, Final, Literal

import grpc
import grpc.aio

from tritone import _convert
from tritone._audio_input import audio_message
from tritone._config import (
    DEFAULT,
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT_S,
    TimeoutTypes,
    TlsConfig,
    channel_credentials,
    channel_options,
    check_load_balancing,
    resolve_timeout,
    tls_config,
)
from tritone._stream import AudioStream, StreamSpec
from tritone._version import __version__
from tritone.errors import ClientClosedError, from_grpc_error, invalid_argument
from tritone.types import (
    Activation,
    AudioChunk,
    AudioInput,
    ClassifyResult,
    Embedding,
    ModelInfo,
    PcmEncoding,
)
from tritone_protos import audio_classification_pb2 as pb
from tritone_protos import audio_classification_pb2_grpc as pb_grpc

__all__ = ["AsyncClient"]

_USER_AGENT: Final = f"tritone-python/{__version__}"


class _ClientState(enum.Enum):
    UNOPENED = 1
    OPENED = 2
    CLOSED = 3


class AsyncClient:
    """Asynchronous client of a Tritone gateway.

    Args:
        target: ``host:port`` of the gateway (any gRPC target string).
        token: Bearer token sent as ``authorization: Bearer <token>`` on every call. With
            TLS it travels as call credentials; without TLS it is sent as plain metadata,
            which is for loopback and tests only: anyone on the path can read it.
        tls: None or False for plaintext, True for TLS with the system's roots, or a
            `TlsConfig` (PEM bytes; the client reads no files).
        timeout: Deadline in seconds of each unary call, None for none. A call's own
            ``timeout=`` overrides it; streams have no deadline unless given one.
        retries: Times a unary call that failed with UNAVAILABLE is retried, with backoff
            (0 disables; gRPC allows at most 4). Streams are never retried.
        options: Extra gRPC channel arguments; they win over the client's own (64 MiB
            message limits, keepalive, retry service config).
        load_balancing: None (gRPC's default, ``pick_first``: one connection), or
            ``"round_robin"``: a connection to every address the target resolves to, each
            call to the next. A Kubernetes Service balances connections, not calls, so
            spread calls over gateway pods with a headless Service and
            ``AsyncClient("dns:///tritone-gateway-headless:50051",
            load_balancing="round_robin")``; a list of addresses works too
            (``"ipv4:10.0.0.1:50051,10.0.0.2:50051"``).

    The channel opens on first use (or ``async with``) in the running event loop, and is
    shared by every call and stream of the client. After `close()` the client refuses
    calls with `ClientClosedError`.

    Example:
        >>> async with AsyncClient("127.0.0.1:50051") as client:
        ...     result = await client.classify("dog.wav")
    """

    def __init__(
        self,
        target: str,
        *,
        token: str | None = None,
        tls: TlsConfig | bool | None = None,
        timeout: float | None = DEFAULT_TIMEOUT_S,
        retries: int = DEFAULT_RETRIES,
        options: Sequence[tuple[str, Any]] | None = None,
        load_balancing: str | None = None,
    ) -> None:
        if not isinstance(target, str) or not target:
            raise ValueError(f"target must be a non-empty 'host:port' string, got {target!r}")
        if token is not None and (not isinstance(token, str) or not token or "\n" in token):
            raise ValueError("token must be a non-empty single-line string or None")
        if timeout is not None and not timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds or None, got {timeout!r}")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"retries must be an int >= 0, got {retries!r}")
        self._target = target
        self._token = token
        self._tls = tls_config(tls)
        self._timeout = timeout
        self._options = channel_options(
            retries=retries,
            tls=self._tls,
            user_options=options,
            user_agent=_USER_AGENT,
            load_balancing=check_load_balancing(load_balancing),
        )
        self._metadata: tuple[tuple[str, str], ...] | None = None
        if token is not None and self._tls is None:
            self._metadata = (("authorization", f"Bearer {token}"),)
        self._state = _ClientState.UNOPENED
        self._channel: Any = None
        self._stub: Any = None

    @property
    def target(self) -> str:
        """The gateway address the client was made with."""
        return self._target

    def __repr__(self) -> str:
        return f"AsyncClient({self._target!r}, state={self._state.name.lower()})"

    async def __aenter__(self) -> AsyncClient:
        self._open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the channel, cancelling calls and streams still running. Idempotent."""
        if self._state is _ClientState.CLOSED:
            return
        self._state = _ClientState.CLOSED
        channel, self._channel, self._stub = self._channel, None, None
        if channel is not None:
            await channel.close()

    def _check_open(self) -> None:
        if self._state is _ClientState.CLOSED:
            raise ClientClosedError("the client is closed; make a new one")

    def _open(self) -> Any:
        self._check_open()
        if self._stub is None:
            if self._tls is None:
                channel = grpc.aio.insecure_channel(self._target, options=self._options)
            else:
                creds = channel_credentials(self._tls, self._token)
                channel = grpc.aio.secure_channel(self._target, creds, options=self._options)
            self._channel = channel
            self._stub = pb_grpc.AudioClassificationStub(channel)  # type: ignore[no-untyped-call]
            self._state = _ClientState.OPENED
        return self._stub

    async def _unary(self, method: str, request: Any, timeout: TimeoutTypes) -> Any:  # noqa: ASYNC109
        """One unary call with the client's deadline and metadata; errors mapped once."""
        stub = self._open()
        deadline = resolve_timeout(timeout, self._timeout)
        try:
            return await getattr(stub, method)(request, timeout=deadline, metadata=self._metadata)
        except grpc.aio.AioRpcError as exc:
            raise from_grpc_error(exc) from exc

    async def classify(
        self,
        audio: AudioInput,
        *,
        sample_rate: int | None = None,
        model: str | None = None,
        top_k: int | None = None,
        segments: bool = False,
        activation: Activation | None = None,
        timeout: TimeoutTypes = DEFAULT,  # noqa: ASYNC109 - a gRPC deadline, per the API
    ) -> ClassifyResult:
        """Classify one whole clip.

        Args:
            audio: A file path (its bytes are sent; the server decodes WAV, FLAC, OGG, MP3),
                the bytes of an encoded file, a numpy array (1-D mono or 2-D [frames,
                channels]; floats in [-1, 1] are sent as f32le, int16 as s16le), or `RawPcm`.
            sample_rate: Rate of a numpy array, in Hz; required for arrays only.
            model: Model name; None means the server's default model.
            top_k: Labels to return, best first; None means the server's default (5).
            segments: Also return one result per analysis window.
            activation: "softmax", "sigmoid" or "none"; None means the model's default.
            timeout: Deadline in seconds, None for none; left out, the client's.

        Returns:
            The clip's labels (best first), the model that answered and, if asked, segments.

        Raises:
            InvalidArgumentError: bad audio or options (found locally, or by the server).
            ModelNotFoundError: no such model.
            DeadlineExceededError: the deadline passed.
            UnavailableError: the gateway or Triton cannot be reached, after retries.
            TritoneError: any other failure, with its `code`.
            OSError: a path could not be read.

        Example:
            >>> result = await client.classify("dog.wav", top_k=3)
            >>> result.top.label
            'bark'
        """
        self._check_open()
        request = _convert.classify_request(
            pb.Audio(), model=model, top_k=top_k, segments=segments, activation=activation
        )
        request.audio.CopyFrom(await audio_message(audio, sample_rate))
        response: pb.ClassifyResponse = await self._unary("Classify", request, timeout)
        return _convert.classify_result(response)

    async def embed(
        self,
        audio: AudioInput,
        *,
        sample_rate: int | None = None,
        model: str | None = None,
        timeout: TimeoutTypes = DEFAULT,  # noqa: ASYNC109 - a gRPC deadline, per the API
    ) -> Embedding:
        """The embedding a backbone model (task "embedding") gives one whole clip.

        Args:
            audio: As for `classify`: a path, encoded bytes, a numpy array or `RawPcm`.
            sample_rate: Rate of a numpy array, in Hz; required for arrays only.
            model: An embedding model, e.g. "speaker-embedding"; None means the default.
            timeout: Deadline in seconds, None for none; left out, the client's.

        Returns:
            The vector, with the model that answered and what was decoded.

        Raises:
            InvalidArgumentError: bad audio, or a model that gives labels, not embeddings.
            ModelNotFoundError: no such model.
            TritoneError: any other failure, with its `code`.

        Example:
            >>> a = (await client.embed("alice.wav", model="speaker-embedding")).as_array()
            >>> b = (await client.embed("bob.wav", model="speaker-embedding")).as_array()
            >>> float(a @ b)  # cosine: the vectors are unit length
            0.41
        """
        self._check_open()
        request = _convert.embed_request(model)
        request.audio.CopyFrom(await audio_message(audio, sample_rate))
        response: pb.EmbedResponse = await self._unary("Embed", request, timeout)
        return _convert.embedding(response)

    async def list_models(
        self,
        *,
        timeout: TimeoutTypes = DEFAULT,  # noqa: ASYNC109 - a gRPC deadline
    ) -> tuple[ModelInfo, ...]:
        """List the models the gateway serves.

        Args:
            timeout: Deadline in seconds, None for none; left out, the client's.

        Returns:
            One `ModelInfo` per model.

        Raises:
            UnavailableError: the gateway cannot be reached, after retries.
            TritoneError: any other failure, with its `code`.

        Example:
            >>> [m.name for m in await client.list_models()]
            ['speech-commands', 'voice-activity']
        """
        response: pb.ListModelsResponse = await self._unary(
            "ListModels", pb.ListModelsRequest(), timeout
        )
        return tuple(_convert.model_info(m) for m in response.models)

    async def get_model(
        self,
        name: str,
        *,
        timeout: TimeoutTypes = DEFAULT,  # noqa: ASYNC109 - a gRPC deadline
    ) -> ModelInfo:
        """Describe one model.

        Args:
            name: The model's name.
            timeout: Deadline in seconds, None for none; left out, the client's.

        Returns:
            Its labels, rate, window, hop, activation and state.

        Raises:
            ModelNotFoundError: no such model.
            TritoneError: any other failure, with its `code`.

        Example:
            >>> (await client.get_model("speech-commands")).sample_rate
            16000
        """
        self._check_open()
        if not isinstance(name, str) or not name:
            raise invalid_argument(f"name must be a non-empty model name, got {name!r}")
        response: pb.ModelInfo = await self._unary(
            "GetModel", pb.GetModelRequest(name=name), timeout
        )
        return _convert.model_info(response)

    async def load_model(
        self,
        name: str,
        *,
        timeout: TimeoutTypes = DEFAULT,  # noqa: ASYNC109 - a gRPC deadline
    ) -> ModelInfo:
        """Load (or reload) a model directory from the server's model repository.

        How a model written by `tritone train` or `tritone import-hf` becomes servable
        without restarting the gateway or Triton.

        Args:
            name: The model's directory name in the repository.
            timeout: Deadline in seconds, None for none; left out, the client's.

        Returns:
            The loaded model's description.

        Raises:
            InvalidArgumentError: a bad name, or a Triton that does not allow loading.
            TritoneError: any other failure (e.g. INTERNAL when Triton cannot load it).

        Example:
            >>> (await client.load_model("my-speakers")).labels
            ('alice', 'bob', 'unknown')
        """
        self._check_open()
        if not isinstance(name, str) or not name:
            raise invalid_argument(f"name must be a non-empty model name, got {name!r}")
        response: pb.ModelInfo = await self._unary(
            "LoadModel", pb.LoadModelRequest(name=name), timeout
        )
        return _convert.model_info(response)

    def stream_classify(
        self,
        chunks: Iterable[AudioChunk] | AsyncIterable[AudioChunk] | None = None,
        *,
        sample_rate: int,
        model: str | None = None,
        encoding: PcmEncoding = PcmEncoding.S16LE,
        channels: int = 1,
        top_k: int | None = None,
        hop_ms: int | None = None,
        interim_results: bool = False,
        detection_threshold: float | Literal["model"] | None = None,
        detection_labels: Sequence[str] = (),
        activation: Activation | None = None,
        suppress_windows: bool = False,
        models: Sequence[str] = (),
        gate: str | None = None,
        gate_threshold: float | None = None,
        gate_padding_ms: int | None = None,
        per_segment: Sequence[str] = (),
        timeout: TimeoutTypes = DEFAULT,
    ) -> AudioStream:
        """Classify live audio: open a stream of raw PCM and receive events as they happen.

        The returned `AudioStream` is an async context manager (send audio yourself) and an
        async iterator of events (window results, detections, then one summary after the
        audio ends). Many streams may run at once on one client.

        Args:
            chunks: Audio to send, a sync or async iterable of bytes or numpy arrays. When
                given, a task sends them and ends the stream; just iterate the result. A
                sync iterable is iterated on the event loop, so it must not block; pass an
                async iterable for paced or live audio.
            sample_rate: Rate of the audio, in Hz.
            model: Model name; None means the server's default model.
            encoding: How the audio travels. Bytes chunks must already be in it; numpy
                chunks (float in [-1, 1] or int16) are converted to it. The default, s16le,
                matches WAV files and microphones and halves the bytes of f32le.
            channels: Interleaved channels per frame; 2-D array chunks must match.
            top_k: Labels per window result; None means the server's default (5).
            hop_ms: Step between windows in ms; None means the model's hop.
            interim_results: Also report zero-padded results before the first full window.
            detection_threshold: Emit a `Detection` when a label's score rises to this value
                and falls back; "model" means at the model's own calibrated per-label
                thresholds (refused if it has none); None means no detections.
            detection_labels: Labels watched for detections; empty means all.
            activation: "softmax", "sigmoid" or "none"; None means the model's default.
            suppress_windows: Do not send window results (detections and summary still come).
            models: Several models on the one stream instead of ``model``; their events name
                their model and the summary has one `ModelSummary` per model.
            gate: A voice-activity model ("voice-activity") that decides when the other
                models run: their windows go to Triton only near speech, silence costs only
                the gate, and `SpeechSegment` events say when speech starts and ends.
            gate_threshold: Speech probability at which a hop counts as speech; None: 0.5.
            gate_padding_ms: Audio kept before and after speech, in ms; None: 200.
            per_segment: Gated models (among ``models``) that answer once per speech
                segment, with an `Utterance`, instead of per window: a windowed classifier
                from its most energetic window, a whole-clip model (a `tritone train` speaker
                model: who spoke, or ``unknown``) from the segment's audio, an embedding
                model with the segment's pooled embedding.
            timeout: Deadline of the whole stream in seconds. Left out or None: no deadline,
                as a live stream lasts as long as its audio (the client's timeout is for
                unary calls).

        Returns:
            The stream; the call starts on ``async with`` or on the first iteration.

        Raises:
            InvalidArgumentError: bad options, at once; bad chunks, from `send()` or the
                iterator.
            ClientClosedError: the client is closed.
            TritoneError: from the iterator (or `send()`), when the call fails.

        Example:
            >>> async with client.stream_classify(sample_rate=16000) as stream:
            ...     await stream.send(pcm_bytes)
            ...     await stream.end()
            ...     events = [event async for event in stream]
        """
        self._check_open()
        config = _convert.stream_config_request(
            sample_rate=sample_rate,
            model=model,
            encoding=encoding,
            channels=channels,
            top_k=top_k,
            hop_ms=hop_ms,
            interim_results=interim_results,
            detection_threshold=detection_threshold,
            detection_labels=detection_labels,
            activation=activation,
            suppress_windows=suppress_windows,
            models=models,
            gate=gate,
            gate_threshold=gate_threshold,
            gate_padding_ms=gate_padding_ms,
            per_segment=per_segment,
        )
        deadline = resolve_timeout(timeout, None)
        if chunks is not None and not isinstance(chunks, Iterable | AsyncIterable):
            raise invalid_argument(
                f"chunks must be an iterable or async iterable, not {type(chunks).__name__}"
            )
        if isinstance(chunks, bytes | bytearray | memoryview | str):
            raise invalid_argument(
                "chunks must be an iterable of chunks, not one bytes or str object"
            )

        def open_call() -> Any:
            stub = self._open()
            return stub.StreamClassify(timeout=deadline, metadata=self._metadata)

        return AudioStream(StreamSpec(open_call, config, encoding, channels, chunks))
