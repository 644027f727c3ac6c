"""The embedded default backbone: a tiny Qwen2.5-VL built offline, saved as an ordinary model directory.

The directory has the same files a hub checkpoint has (config.json, model.safetensors, tokenizer
files, preprocessor_config.json), so `tvau.model.backbone.load_backbone` loads it with the same
`from_pretrained` calls as Qwen2.5-VL-7B-Instruct. Weights are random but deterministic from the seed.

The tokenizer is a byte-level BPE with Qwen2's pre-tokenizer, trained (in about a second) on our closed
vocabulary (tvau.vocab), the anchor prompts and the dialogue questions, so every string round-trips
(byte fallback covers anything outside ASCII) and our words are short token sequences. Special tokens
come first, in a fixed order: Qwen's chat/vision tokens, then the three anomaly prompt tokens.
"""

from __future__ import annotations

import json
import os
import shutil
import string
import tempfile
from pathlib import Path

from tvau.model.arch import TokenIds, tiny_config
from tvau.model.chat import (
    ANOMALY_TOKENS,
    ENDOFTEXT,
    IM_END,
    IMAGE_PAD,
    QWEN_SPECIAL_TOKENS,
    VIDEO_PAD,
    VISION_END,
    VISION_START,
)
from tvau.questions import FOLLOW_UPS, Q_ANOMALY

TINY_VERSION = 3  # bump when the tiny architecture or tokenizer changes (new cache directory)
TINY_BPE_VOCAB = 1024  # target BPE vocabulary size (the corpus is small; training stops earlier)

# OpenAI CLIP normalisation, as in Qwen2.5-VL's preprocessor_config.json.
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


def tiny_dir(cache_dir: str | Path, seed: int) -> Path:
    return Path(cache_dir) / f"tiny-qwen2.5-vl-s{seed}-v{TINY_VERSION}"


def _corpus() -> list[str]:
    from tvau import vocab
    from tvau.model.prompts import prompt_sentences

    words = [
        *vocab.EVENT_CLASSES, *vocab.ANOMALY_KINDS, *vocab.CATEGORIES, *vocab.COLORS, *vocab.ACTIONS,
        *vocab.MOTION_STATES, *vocab.REGIONS_3X3,
    ]
    lines = [" ".join(words), Q_ANOMALY, *FOLLOW_UPS, "You are a helpful assistant.", "system user assistant",
             "Yes, there is an anomaly. No, there is no anomaly. The target moves from left to right.",
             string.printable]
    # Common words of answers and descriptions, repeated so that BPE keeps them whole.
    common = ("the a an is are there in on of to from with and its it moves stays near far top bottom "
              "target object video frame left right middle yes no anomaly normal abnormal")
    lines += [common] * 2
    lines += [f"a {c} {w}" for c in vocab.COLORS for w in vocab.CATEGORIES]
    lines += prompt_sentences("normal") + prompt_sentences("abnormal")
    return lines + _dialogue_corpus()


def _dialogue_corpus() -> list[str]:
    """Sentences made by the project's own dialogue templates (tvau.construct, tvau.pretrain), so
    that the words of every answer the LM is trained on (garments, action phrases, motion verbs,
    the fixed answer frames) are whole tokens, as they are in Qwen's 150k-token vocabulary. Spelled
    out letter by letter ("h o o d i e"), a 2-layer LM garbles them ("an orange hoo")."""
    from tvau import vocab
    from tvau.construct.dialogue import phase_a, phase_b_anomalous, phase_b_normal
    from tvau.construct.sentences import ACTION_PHRASE, MOTION_VERB
    from tvau.questions import Q_COLOR, Q_DESCRIBE_AT, Q_DOING, Q_ENV, Q_MOVE, Q_MOVES, Q_OBJECTS, Q_WHAT
    from tvau.synth.palette import LOWER_GARMENTS, UPPER_GARMENTS

    colors, regions = vocab.COLORS, vocab.REGIONS_3X3
    lines = [Q_ENV, Q_MOVES, Q_OBJECTS, Q_WHAT, Q_DOING, Q_MOVE, Q_COLOR, *ACTION_PHRASE.values(), *MOTION_VERB.values()]
    lines += [Q_DESCRIBE_AT.format(region=r) for r in regions] * 2
    lines += [f"Its {t} is {c} and its {b} are {colors[-k]}." for k, c in enumerate(colors)
              for t, b in zip(UPPER_GARMENTS, LOWER_GARMENTS * 2)] + [f"It is {c}." for c in colors]
    people = []
    for k, (top, bottom) in enumerate((t, b) for t in UPPER_GARMENTS for b in LOWER_GARMENTS):
        for j in range(len(colors)):
            up, low = colors[j], colors[(j + 3 * k + 1) % len(colors)]
            clothing = f"{top} and {bottom}" + (" with a bag" if (j + k) % 3 == 0 else "")
            people.append({"category": "person", "colors": {"upper": up, "lower": low}, "clothing": clothing})
    things = [{"category": c, "colors": {"body": colors[k % len(colors)]}, "clothing": ""}
              for k, c in enumerate(vocab.CATEGORIES[1:] * 2)]
    states, actions = list(MOTION_VERB), list(ACTION_PHRASE)
    objects = [dict(o, regions=[regions[k % 9], regions[(4 * k + 1) % 9]][: 1 + k % 2],
                    motion_state=states[k % len(states)], described_category=o["category"],
                    described_colors=o["colors"], described_clothing=o["clothing"],
                    described_action=actions[k % len(actions)])
               for k, o in enumerate(people + things)]
    for k, o in enumerate(objects):
        others = [objects[(k + 1) % len(objects)], objects[(k + 7) % len(objects)]]
        convs = [phase_a([o, *others]), phase_b_anomalous(o, others)[0], phase_b_normal(others)[0]]
        lines += [m["content"] for msgs in convs for m in msgs]
    return lines


def build_tiny_tokenizer():
    """A Qwen2Tokenizer (transformers) over a BPE trained on our corpus. Deterministic."""
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX, Qwen2Tokenizer

    specials = [*QWEN_SPECIAL_TOKENS, *ANOMALY_TOKENS]
    bpe = Tokenizer(models.BPE())
    bpe.normalizer = normalizers.NFC()
    bpe.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    trainer = trainers.BpeTrainer(
        vocab_size=TINY_BPE_VOCAB, min_frequency=2, special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    bpe.train_from_iterator(_corpus(), trainer)
    model = json.loads(bpe.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    tok = Qwen2Tokenizer(vocab=model["vocab"], merges=merges, unk_token=ENDOFTEXT, eos_token=IM_END,
                         pad_token=ENDOFTEXT)
    tok.add_special_tokens({"additional_special_tokens": specials})
    return tok


def token_ids(tok) -> TokenIds:
    c = tok.convert_tokens_to_ids
    return TokenIds(bos=c(ENDOFTEXT), eos=c(IM_END), pad=c(ENDOFTEXT), vision_start=c(VISION_START),
                    vision_end=c(VISION_END), image=c(IMAGE_PAD), video=c(VIDEO_PAD))


def tiny_preprocessor_config() -> dict:
    # Same keys and values as Qwen2.5-VL-7B-Instruct's preprocessor_config.json, except the pixel
    # bounds: small clips (112x112) must not be upscaled to the 7B's 56x56*... minimum.
    return {
        "image_processor_type": "Qwen2VLImageProcessor", "processor_class": "Qwen2_5_VLProcessor",
        "do_resize": True, "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
        "do_convert_rgb": True, "resample": 3, "image_mean": CLIP_MEAN, "image_std": CLIP_STD,
        "patch_size": 14, "temporal_patch_size": 2, "merge_size": 2,
        "min_pixels": 28 * 28, "max_pixels": 28 * 28 * 1280,
    }


def write_tiny_backbone(out_dir: str | Path, seed: int = 0) -> Path:
    """Build the tiny model + tokenizer + preprocessor config into out_dir (written atomically)."""
    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration

    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        tok = build_tiny_tokenizer()
        config = tiny_config(vocab_size=len(tok), ids=token_ids(tok))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = Qwen2_5_VLForConditionalGeneration(config).eval()
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        (tmp / "preprocessor_config.json").write_text(json.dumps(tiny_preprocessor_config(), indent=2))
        (tmp / "tvau_tiny.json").write_text(json.dumps({"seed": seed, "version": TINY_VERSION}))
        try:
            os.replace(tmp, out_dir) if not out_dir.exists() else shutil.rmtree(tmp)
        except OSError:  # another process renamed its copy first: keep theirs
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def ensure_tiny(cache_dir: str | Path, seed: int = 0) -> Path:
    """The tiny model directory for this seed, built on first use."""
    d = tiny_dir(cache_dir, seed)
    if not (d / "config.json").exists():
        write_tiny_backbone(d, seed)
    return d
