"""Structure checks of an LLM checkpoint folder, so a broken one fails in one line, not mid-run.

:meth:`unlearnbench.causal_lm.CausalLM.load` calls these around ``from_pretrained``:

* :func:`check_weight_files` before loading: every ``*.safetensors`` file has a readable
  header that covers the file (an empty, 5-byte or truncated file fails here), and the shard
  index names only files that exist;
* :func:`check_shapes` before loading: the tensor shapes in those headers match the model
  that ``config.json`` describes (built on the ``meta`` device: no memory, no weights);
* :func:`check_loaded` after loading: no tensor of the model was missing from the files
  (transformers would initialise it randomly and the model would be scored with random
  layers), and the tokenizer's vocabulary fits the input and output embeddings (an id past
  the embedding is an IndexError in the middle of scoring);
* :func:`read_template_file` reads ``unlearnbench_template.json``, refusing unknown keys;
* :func:`load_error` turns what ``from_pretrained`` raises on a bad file (a pickle that
  ``weights_only`` refuses, a size mismatch, a missing file) into one line.
"""

from __future__ import annotations

import dataclasses
import json
import pickle
from pathlib import Path
from typing import Any

from unlearnbench.errors import UserError

INDEX = "model.safetensors.index.json"


def check_weight_files(folder: Path) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape over the folder's safetensors files (headers only)."""
    from safetensors import safe_open

    shapes: dict[str, tuple[int, ...]] = {}
    index = folder / INDEX
    if index.is_file():
        try:
            names = set(json.loads(index.read_text())["weight_map"].values())
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
            raise UserError(f"{index} is not a safetensors shard index (no weight_map)") from None
        absent = sorted(n for n in names if not (folder / n).is_file())
        if absent:
            raise UserError(f"{folder}: shard {absent[0]} named in {INDEX} is missing")
    for f in sorted(folder.glob("*.safetensors")):
        if f.stat().st_size == 0:
            raise UserError(f"{f} is empty")
        try:
            with safe_open(str(f), "pt") as st:
                for k in st.keys():
                    shapes[k] = tuple(st.get_slice(k).get_shape())
        except Exception as e:  # noqa: BLE001 - SafetensorError and OSError: a broken file either way
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise UserError(f"{f} is not a readable safetensors file (truncated or corrupt?): {msg}") from None
    return shapes


def check_shapes(folder: Path, shapes: dict[str, tuple[int, ...]]) -> None:
    """The files' tensor shapes match the model ``config.json`` describes (tensors both name)."""
    if not shapes:
        return
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    try:
        config = AutoConfig.from_pretrained(str(folder), trust_remote_code=False)
        if getattr(config, "quantization_config", None):
            return  # packed quantized tensors have other shapes than the float model: transformers checks them
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config, trust_remote_code=False)
    except (OSError, ValueError, KeyError, TypeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"{folder}/config.json does not describe a causal LM transformers can build: {first}") from None
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    for name, shape in shapes.items():
        want = expected.get(name)
        if want is not None and want != shape:
            raise UserError(f"{folder}: tensor {name} has shape {list(shape)} in the weights but {list(want)} "
                            "from config.json (config and weights are of different models)")


def check_loaded(model: Any, tokenizer: Any, info: dict | None, where: str) -> None:
    """No missing tensors; every token id fits the input and output embeddings."""
    missing = sorted((info or {}).get("missing_keys") or [])
    if missing:
        raise UserError(f"{where}: {len(missing)} tensor(s) of the model are missing from the weights "
                        f"(e.g. {missing[0]}); it would be scored with random values there")
    n_vocab = len(tokenizer)
    for what, layer in (("input", model.get_input_embeddings()), ("output", model.get_output_embeddings())):
        size = getattr(layer, "num_embeddings", None) or getattr(layer, "out_features", None)
        if size is not None and n_vocab > size:
            raise UserError(f"{where}: the tokenizer has {n_vocab} tokens but the model's {what} embedding only "
                            f"{size} rows (tokenizer and weights are of different models)")


def read_template_file(path: Path):
    """The saved :class:`PromptTemplate`, or None when the file is absent."""
    from unlearnbench.templates import PromptTemplate

    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{path} is not valid JSON ({e})") from None
    if not isinstance(doc, dict):
        raise UserError(f"{path} must be a JSON object (a prompt template), not {type(doc).__name__}")
    fields = {f.name for f in dataclasses.fields(PromptTemplate)}
    unknown = sorted(set(doc) - fields)
    if unknown:
        raise UserError(f"{path}: unknown key {unknown[0]!r} (a template has {', '.join(sorted(fields))})")
    if not isinstance(doc.get("name"), str):
        raise UserError(f"{path} names no template ('name' must be a string)")
    return PromptTemplate(**doc)


def load_error(e: BaseException, path: str) -> UserError:
    """One line for an exception raised while reading a checkpoint."""
    text = str(e).strip()
    first = text.splitlines()[0] if text else type(e).__name__
    if isinstance(e, pickle.UnpicklingError) or "Weights only load failed" in text:
        return UserError(f"refused to unpickle {path}: the file holds more than plain tensors (torch.load with "
                         "weights_only=True); convert it to safetensors")
    if "ignore_mismatched_sizes" in text or "size mismatch" in text:
        return UserError(f"the weights in {path} do not fit the model its config.json describes (tensor sizes differ)")
    return UserError(f"cannot load a causal LM from {path}: {first}")
