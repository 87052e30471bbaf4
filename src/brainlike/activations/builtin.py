"""Built-in vision-language model shapes, written offline: CLIP constants, BPE vocabulary, configs.

No CLIP or BridgeTower weights are available offline, so two architectures are built here from
their config classes (:func:`write_builtin`): ``clip-vit-b32`` (CLIP ViT-B/32 shape) and
``bridgetower-small`` (a reduced BridgeTower), with the real CLIP BPE vocabulary shipped in
``open-clip-torch``. A folder written here serves ``trained: false`` model entries (random
initialisation from the entry's seed); a user with real weights points ``source`` at their folder.
"""

from __future__ import annotations

import gzip
import json
from functools import lru_cache
from pathlib import Path

from .._utils.atomic import atomic_path
from .._utils.hashing import sha256_file
from ..errors import DataError

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)  # OpenAI CLIP image normalisation
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
CLIP_CONTEXT = 77
BUILTIN_INFO = "brainlike_builtin.json"


def clip_bpe_file() -> Path:
    """The real CLIP BPE merges shipped with open-clip-torch (``bpe_simple_vocab_16e6.txt.gz``)."""
    import importlib.util

    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(None, "package open-clip-torch is not installed; it ships the CLIP BPE vocabulary "
                        "(install with `uv pip install --no-deps open-clip-torch`)", "tokenizer")
    path = Path(next(iter(spec.submodule_search_locations))) / "bpe_simple_vocab_16e6.txt.gz"
    if not path.is_file():
        raise DataError(path, "CLIP BPE vocabulary file missing from open-clip-torch", "tokenizer")
    return path


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2 / CLIP reversible byte -> printable character map (256 entries)."""
    bs = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs), strict=True))


@lru_cache(maxsize=1)
def clip_vocab() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """CLIP's 49,408-token vocabulary and 48,894 merges, built as open_clip's SimpleTokenizer does.

    Vocabulary order: 256 byte characters, the same with ``</w>``, one token per merge, then
    ``<|startoftext|>`` (49406) and ``<|endoftext|>`` (49407).
    """
    path = clip_bpe_file()
    try:
        lines = gzip.open(path).read().decode("utf-8").split("\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(path, f"cannot read the CLIP BPE vocabulary: {exc}", "tokenizer") from None
    merges = [tuple(m.split()) for m in lines[1 : 49152 - 256 - 2 + 1]]
    base = list(_bytes_to_unicode().values())
    tokens = base + [b + "</w>" for b in base] + ["".join(m) for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
    return {t: i for i, t in enumerate(tokens)}, merges


def clip_tokenizer(model_max_length: int = CLIP_CONTEXT):
    """A fast CLIP tokenizer (transformers ``CLIPTokenizer``) on the real CLIP BPE vocabulary."""
    from transformers import CLIPTokenizer

    vocab, merges = clip_vocab()
    return CLIPTokenizer(vocab=dict(vocab), merges=list(merges), model_max_length=model_max_length)


def builtin_config(name: str):
    """Config of a built-in VLM shape (no weights exist offline: use with ``trained: false``).

    ``clip-vit-b32``: OpenAI CLIP ViT-B/32 (text 12 x 512, FFN 2048, 8 heads, 77 tokens; vision
    12 x 768, FFN 3072, 12 heads, 224 px, 32 px patches; projection 512; ~151 M parameters).
    ``bridgetower-small``: BridgeTower at reduced size (text 6 x 512, FFN 2048, 8 heads, RoBERTa-style
    positions for 77 tokens; vision CLIP-style 6 x 512, FFN 2048, 224 px, 32 px patches; 3 fusion
    layers per stream of 512, FFN 2048), with the CLIP BPE vocabulary (49,408 tokens) in place of
    RoBERTa's, which is not available offline.
    """
    from transformers import BridgeTowerConfig, CLIPConfig

    vocab = 49408
    if name == "clip-vit-b32":
        return CLIPConfig(
            text_config=dict(vocab_size=vocab, hidden_size=512, intermediate_size=2048, num_hidden_layers=12,
                             num_attention_heads=8, max_position_embeddings=CLIP_CONTEXT, bos_token_id=49406,
                             eos_token_id=49407, pad_token_id=1),
            vision_config=dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                               image_size=224, patch_size=32),
            projection_dim=512,
        )
    if name == "bridgetower-small":
        return BridgeTowerConfig(
            hidden_size=512, num_hidden_layers=3, num_attention_heads=8,
            # pad_token_id doubles as RoBERTa's position padding index: positions start at pad + 1
            text_config=dict(vocab_size=vocab, hidden_size=512, intermediate_size=2048, num_hidden_layers=6,
                             num_attention_heads=8, max_position_embeddings=CLIP_CONTEXT + 2, pad_token_id=1,
                             bos_token_id=49406, eos_token_id=49407),
            vision_config=dict(hidden_size=512, num_hidden_layers=6, image_size=224, patch_size=32),
        )
    raise DataError(None, f"unknown built-in VLM {name!r}; expected one of {BUILTINS}", "models[].source")


BUILTINS = ("clip-vit-b32", "bridgetower-small")


def write_builtin(name: str, folder: str | Path) -> Path:
    """Write a loadable model folder for a built-in shape (atomically): config, tokenizer, preprocessing.

    No weight file is written: the folder serves ``trained: false`` (``load_model`` builds the
    model from ``config.json`` with the entry's seed).
    """
    config = builtin_config(name)
    folder = Path(folder)
    with atomic_path(folder) as tmp:
        tmp.mkdir(parents=True)
        config.save_pretrained(str(tmp))
        clip_tokenizer(CLIP_CONTEXT).save_pretrained(str(tmp))
        size = int(config.vision_config.image_size)
        (tmp / "preprocessor_config.json").write_text(json.dumps(
            {"size": {"shortest_edge": size}, "crop_size": {"height": size, "width": size},
             "image_mean": list(CLIP_MEAN), "image_std": list(CLIP_STD), "resample": "bicubic"}, indent=1) + "\n")
        (tmp / BUILTIN_INFO).write_text(json.dumps(
            {"builtin": name, "bpe": clip_bpe_file().name, "bpe_sha256": sha256_file(clip_bpe_file())},
            indent=1) + "\n")
    return folder
