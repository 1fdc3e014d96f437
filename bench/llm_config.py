"""Write the embedded LLM's shape (``config.json``) and tokenizer to a folder, without its weights.

    .venv/bin/python bench/llm_config.py OUT_DIR

A GPU machine without the embedded GGUF (98 MB, over what a device call carries) can then time stage 2 on a model
of exactly SmolLM2-135M's shape with random weights: ``bench/stage2.py --llm-config OUT_DIR``. Timing only.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from allmrec_pipeline.llm.loading import LLMSpec, load_frozen_llm
from allmrec_pipeline.schema import base_parameters


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder to write config.json and the tokenizer's files to")
    args = parser.parse_args()
    params = base_parameters()
    model, tokenizer = load_frozen_llm(LLMSpec(**{**params["llms"][params["llm"]], "device": "cpu"}))
    args.out.mkdir(parents=True, exist_ok=True)
    model.config.save_pretrained(args.out)
    tokenizer.save_pretrained(args.out)
    print(f"wrote {sorted(p.name for p in args.out.iterdir())} to {args.out}")


if __name__ == "__main__":
    main()
