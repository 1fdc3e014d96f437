"""LoRA adapters (peft) in a private copy of a frozen LLM: the TALLRec baseline fine-tunes the LLM itself.

The shared, frozen LLM (``loading.load_frozen_llm`` hands every node the same object) is never changed: the
adapters go into a deep copy, and only their own weights train and are saved.
"""

from __future__ import annotations

import copy

from peft import LoraConfig, inject_adapter_in_model
from peft.tuners.lora import LoraLayer
from torch import nn
from transformers import PreTrainedModel

ADAPTER = "default"


def with_lora(
    llm: PreTrainedModel, rank: int, alpha: float, dropout: float, target_modules: list[str]
) -> tuple[PreTrainedModel, nn.ModuleDict]:
    """A copy of ``llm`` with LoRA adapters (``B·A``, ``B`` zero at first: the copy starts as ``llm``) on the
    linear layers named ``target_modules``, and the adapters as one module (``A``, ``B`` and the dropout of
    each adapted layer, keyed by the layer's name with ``.`` as ``__``) for the caller to train and save.

    Raises:
        ValueError: a bad rank or alpha, or no layer of ``llm`` matches ``target_modules``.
    """
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise ValueError(f"lora_rank must be an integer >= 1 or null, not {rank!r}")
    if alpha <= 0 or not 0 <= dropout < 1:
        raise ValueError(f"lora_alpha must be > 0 and lora_dropout in [0, 1), not {alpha!r} and {dropout!r}")
    names = {name.rsplit(".", 1)[-1] for name, module in llm.named_modules() if isinstance(module, nn.Linear)}
    missing = sorted(set(target_modules) - names)
    if not target_modules or missing:
        raise ValueError(
            f"lora_target_modules {list(target_modules)}: {missing or 'none given'} not among the LLM's linear "
            f"layers ({', '.join(sorted(names))})"
        )
    adapted = copy.deepcopy(llm)
    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(target_modules))
    inject_adapter_in_model(config, adapted, adapter_name=ADAPTER)
    device = next(llm.parameters()).device
    adapters = nn.ModuleDict(
        {
            name.replace(".", "__"): nn.ModuleDict(
                {
                    "A": layer.lora_A[ADAPTER],
                    "B": layer.lora_B[ADAPTER],
                    "dropout": layer.lora_dropout[ADAPTER],
                }
            )
            for name, layer in adapted.named_modules()
            if isinstance(layer, LoraLayer)
        }
    )
    # the adapters train in fp32 (bf16 Adam steps on a zero-initialised B would round away); each adapted layer
    # casts its input to them and their output back
    return adapted, adapters.to(device=device).float().requires_grad_(True)
