"""The language side of the embedded backbone's pretraining: generic questions and answers about
pretraining-world videos, and the loop that teaches them to the tiny language model.

A vendor-pretrained VLM can already say what is in a video, answer a yes/no question about it and
describe how something moves; T-VAU's stage 2 only adapts it (LoRA) to anomaly dialogue. The
embedded tiny LM starts random, and LoRA on a random LM learns nothing readable (the stage-2 model
answered "m situationm situation..." to every question). So, after the vision tower, the LM (token
embeddings, blocks, head) learns these generic dialogues, with the tower and merger frozen.

The dialogues come from the generator's ground truth of each world video, in the project's own
sentence templates (tvau.construct.sentences), and never mention anomalies:
- "What is in the video?" -> "There are 3: a person in a red shirt and blue jeans, a green bicycle
  and a white car."
- "Is there a bicycle in the video?" / "Is anyone running?" -> "Yes. ..." / "No. ..." (half present,
  half absent, drawn from the world's categories and actions);
- "Describe what is in the left." -> "A person in a red shirt and blue jeans, running." (an object
  named by the region it is mostly in, as stage 2 points at the anomaly by its region), then "What
  colour is it?" -> "Its shirt is red and its jeans are blue." and "From where to where does it
  move?" -> "It moves from the left to the middle.";
- "What is <appearance> doing?" -> "It is riding a bicycle.", then "How does it move?" -> "It moves
  fast from the left to the right."
Held out, the model's own greedy answers are read into fields (tvau.metrics.fields) and scored
against the reference answers (GENERIC_FIELDS): the stand-in for a vendor model's ability to describe.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tvau import vocab
from tvau.construct.dialogue import _cap as capitalised
from tvau.construct.dialogue import _listing as listing
from tvau.construct.motion import regions_visited
from tvau.construct.sentences import ACTION_PHRASE, appearance, from_to, trajectory
from tvau.pretrain.config import LanguageConfig, PretrainConfig, WorldConfig
from tvau.questions import Q_COLOR, Q_DESCRIBE_AT, Q_DOING, Q_FROM_TO, Q_MOVE, Q_WHAT

# Speed thresholds (person heights per frame) of the generic motion words, as tvau.construct reads
# them off timelines: static, small movement, walking, fast.
_SPEEDS = ((0.004, "static"), (0.012, "small movement"), (0.05, "walking"))
MAX_NAMED = 3  # objects named in the answer to Q_WHAT (the largest in view)
# Objects described by their region per dialogue: each costs about 55 text tokens beside the clip's
# 256 to 768 video tokens, and reading the region named is what stage 2's target answer needs.
MAX_REGIONS = 3
MIN_VISIBLE_PX = 40  # an object counts as seen when it covers this many pixels over the video
# Frames of the short clips the language model also learns from: their 256 video tokens (at 224 px)
# make a step about three times cheaper than a whole 24-frame video's 768 (LanguageConfig.short_share).
SHORT_CLIP = 8


def _motion_state(speed: float) -> str:
    for limit, word in _SPEEDS:
        if speed < limit:
            return word
    return "fast"


def _looks(actors, scene, ids: np.ndarray, start: int = 0) -> list[dict]:
    """What a describer says about each object in view, largest first: who (appearance phrase),
    category, action, regions visited, motion, the region it is mostly in, and its colour sentence.
    `ids`: the id maps of frames start..start + len(ids) - 1 of the video, the span described."""
    size, span = ids.shape[-1], slice(start, start + len(ids))
    counts = np.bincount(ids.reshape(-1), minlength=max((a.oid for a in actors), default=0) + 1)
    seen = [a for a in actors if counts[a.oid] >= MIN_VISIBLE_PX
            and a.category != "ball"]  # a ball is a few pixels: the thrower is what one describes
    seen.sort(key=lambda a: -counts[a.oid])
    info = []
    for a in seen:
        t = np.flatnonzero(a.present[span]) + start
        if not len(t):
            continue
        words = [w for w in (a.action[k] for k in t) if w is not None]
        act = max(sorted(set(words)), key=words.count) if words else "standing"
        h = np.array([scene.person_height(float(a.y[k])) * a.size for k in t])
        step = np.hypot(np.diff(a.x[t]), np.diff(a.y[t])) / h[:-1] if len(t) > 1 else np.zeros(1)
        motion = _motion_state(float(np.median(step)))
        if act in ("loitering", "gathering", "walking", "standing"):  # by its own speed, as world.py
            act = "standing" if motion == "static" else "walking"
        cy = a.y[t] - 0.5 * h if a.category == "person" else a.y[t] - 0.2 * h
        regions = [str(r) for r in vocab.regions_of(np.clip(a.x[t], 0, size - 1), np.clip(cy, 0, size - 1),
                                                    size, size)]
        colors = a.look["colors"]
        if a.category == "person":
            color = f"Its {a.look['top']} is {colors['upper']} and its {a.look['bottom']} are {colors['lower']}."
        else:
            color = f"It is {' and '.join(dict.fromkeys(colors.values()))}."
        info.append({"who": appearance(a.category, colors, a.look.get("clothing", "")),
                     "category": a.category, "action": act, "regions": regions_visited(regions, min_run=1),
                     "mostly": max(sorted(set(regions)), key=regions.count), "motion": motion, "color": color})
    return info


def world_dialogue(actors, scene, ids: np.ndarray, rng: np.random.Generator, start: int = 0) -> list[tuple[str, str]]:
    """Generic (question, answer) turns about one rendered world video, in units (`shuffled` reorders
    them): what is there; one yes/no question; up to MAX_REGIONS objects, each named by its region,
    described (appearance and action, as T-VAU's target answer), its colour and where it goes; one
    object named by its appearance, what it does and how it moves. `ids`: (T, S, S) id maps, so only
    what the camera shows is described; `start`: the frame of the video ids[0] is (a clip of it)."""
    info = _looks(actors, scene, ids, start)
    turns: list[tuple[str, str]] = []
    if info:
        names = [i["who"] for i in info]
        if len(names) == 1:
            turns.append((Q_WHAT, f"There is one: {names[0]}."))
        elif len(names) <= MAX_NAMED:
            turns.append((Q_WHAT, f"There are {len(names)}: {listing(names)}."))
        else:  # the largest in view first, as one would describe a busy scene
            turns.append((Q_WHAT, f"There are {len(names)}, among them {listing(names[:MAX_NAMED])}."))
    else:
        turns.append((Q_WHAT, "There is nobody and nothing in the video."))
    turns.append(_yes_no(info, rng))
    # Named by its region: each object alone in the region it is mostly in, up to MAX_REGIONS of them.
    places = [i["mostly"] for i in info]
    unique = [i for i in info if places.count(i["mostly"]) == 1]
    for k in rng.permutation(len(unique))[:MAX_REGIONS]:
        i = unique[int(k)]
        turns.append((Q_DESCRIBE_AT.format(region=i["mostly"]),
                      f"{capitalised(i['who'])}, {ACTION_PHRASE[i['action']]}."))
        turns.append((Q_COLOR, i["color"]))
        turns.append((Q_FROM_TO, from_to(i["regions"])))
    if info:
        i = info[int(rng.integers(len(info)))]
        turns.append((Q_DOING.format(who=i["who"]), f"It is {ACTION_PHRASE[i['action']]}."))
        turns.append((Q_MOVE, f"It {trajectory(i['regions'], i['motion'])}."))
    return turns


def _yes_no(info: list[dict], rng: np.random.Generator) -> tuple[str, str]:
    """One yes/no question, present or absent with equal chance, about a category or an action."""
    cats = sorted({i["category"] for i in info})
    acts = sorted({i["action"] for i in info if i["category"] == "person"})
    if rng.random() < 0.5:
        pool = [c for c in vocab.CATEGORIES if c != "ball"]
        cat = pool[int(rng.integers(len(pool)))] if rng.random() < 0.5 or not cats else cats[int(rng.integers(len(cats)))]
        thing = appearance(cat, {})  # "a bicycle", "an ..."
        # "Yes." / "No." first, as T-VAU's dialogues answer (tvau.construct.dialogue): with "Yes, ..."
        # here, stage 2 met a "." after "Yes" that cost 7.9 nats and its decision stayed at chance.
        return f"Is there {thing} in the video?", (f"Yes. There is {thing}." if cat in cats else f"No. There is no {cat}.")
    pool = [w for w in ACTION_PHRASE if w not in ("loitering", "gathering", "driving", "flying", "dropped")]
    act = pool[int(rng.integers(len(pool)))] if rng.random() < 0.5 or not acts else acts[int(rng.integers(len(acts)))]
    phrase = ACTION_PHRASE[act]
    who = next((i["who"] for i in info if i["category"] == "person" and i["action"] == act), None)
    return f"Is anyone {phrase}?", (f"Yes. {capitalised(who)} is {phrase}." if who else f"No. Nobody is {phrase}.")


def world_dialogues(actors, scene, ids: np.ndarray, rng: np.random.Generator, clip: int = SHORT_CLIP) -> list:
    """[(start, stop, turns)]: the dialogue of the whole video, then of each of its `clip`-frame
    clips (the render hook of tvau.pretrain.world: WorldVideo.dialogue)."""
    spans = [(0, len(ids)), *((s, s + clip) for s in range(0, len(ids) - clip + 1, clip))]
    return [(a, b, world_dialogue(actors, scene, ids[a:b], rng, a)) for a, b in spans]


def units(turns: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    """world_dialogue's turns in their units (a unit's turns stay together: "it" refers back)."""
    out: list[list[tuple[str, str]]] = []
    for q, a in turns:
        if q in (Q_COLOR, Q_FROM_TO, Q_MOVE):
            out[-1].append((q, a))
        else:
            out.append([(q, a)])
    return out


def shuffled(turns: list[tuple[str, str]], rng: np.random.Generator) -> list[tuple[str, str]]:
    """The turns of world_dialogue with their units in a random order. Training on every order makes
    the model answer the question asked, not the turn's position."""
    parts = units(turns)
    return [t for k in rng.permutation(len(parts)) for t in parts[int(k)]]


def _yes_no_ids(tok) -> tuple[int, int]:
    return tok.encode("Yes", add_special_tokens=False)[0], tok.encode("No", add_special_tokens=False)[0]


def language_model(vision_dir, cfg: LanguageConfig, tiny_seed: int):
    """(model, tokenizer): the vision part's tower and merger (its weights) under a fresh language
    model of `cfg`'s depth at the merger's width, random from `tiny_seed`."""
    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration

    from tvau.model.arch import TINY_VISION, text_shape, tiny_config
    from tvau.model.attention import apply as apply_attention
    from tvau.model.tiny import build_tiny_tokenizer, token_ids

    seen = Qwen2_5_VLForConditionalGeneration.from_pretrained(vision_dir, dtype=torch.float32)
    vc = seen.config.vision_config
    tok = build_tiny_tokenizer()
    text = text_shape(vc.out_hidden_size, cfg.layers, cfg.heads, cfg.kv_heads, cfg.mlp_ratio)
    config = tiny_config(len(tok), token_ids(tok), vision={k: getattr(vc, k) for k in TINY_VISION}, text=text)
    torch.manual_seed(tiny_seed)
    model = Qwen2_5_VLForConditionalGeneration(config).eval()
    model.model.visual.load_state_dict(seen.model.visual.state_dict())
    apply_attention(model, "auto")
    for p in model.model.visual.parameters():
        p.requires_grad_(False)
    return model, tok


class _Chat:
    """The LM side of a Backbone over pre-encoded videos: (dialogue, merged tokens, grid) samples."""

    def __init__(self, bb) -> None:
        self.bb = bb

    def inputs(self, samples, conversations):
        bb, per = self.bb, []
        for (_, emb, grid), turns in zip(samples, conversations):
            prompt = bb.prompt(turns, grid)
            per.append((prompt, bb.embed(prompt, emb), bb.position_ids(prompt, grid)))
        embeds, mask, pos = bb.batch_inputs([p[1] for p in per], [p[2] for p in per])
        return [p[0] for p in per], embeds, mask, pos

    def forward(self, samples, conversations):
        from tvau.model.chat import left_padded_labels

        prompts, embeds, mask, pos = self.inputs(samples, conversations)
        out = self.bb.language_model(inputs_embeds=embeds, attention_mask=mask, position_ids=pos, use_cache=False)
        logits = self.bb.model.lm_head(out.last_hidden_state)
        return logits, left_padded_labels(prompts, logits.shape[1])

    def loss(self, samples, conversations):
        """Mean next-token cross-entropy over the answer tokens (tvau.model.chat.answer_loss), with
        the head applied to those positions only: most of a sequence is video tokens, and the
        head over all of them was a sixth of a step's time."""
        import torch.nn.functional as F

        from tvau.model.chat import left_padded_labels

        prompts, embeds, mask, pos = self.inputs(samples, conversations)
        out = self.bb.language_model(inputs_embeds=embeds, attention_mask=mask, position_ids=pos, use_cache=False)
        target = left_padded_labels(prompts, embeds.shape[1])[:, 1:]
        keep = target != -100
        return F.cross_entropy(self.bb.model.lm_head(out.last_hidden_state[:, :-1][keep]).float(), target[keep])

    def answer(self, samples, conversations, max_new_tokens: int = 48) -> list[str]:
        """Greedy answers to each conversation's last (unanswered) question."""
        _, embeds, mask, pos = self.inputs(samples, conversations)
        return self.bb.greedy_decode_batch(embeds, pos, max_new_tokens, attention_mask=mask)


def _encoded(bb, world: WorldConfig, stream: int, count: int, height: int, width: int, pool,
             short: bool = True) -> tuple[list[tuple], list[tuple]]:
    """(whole videos, short clips): (dialogue, merged vision tokens, grid) per world video of `stream`
    and per SHORT_CLIP-frame clip of it (none when not `short`), 8 clips per vision call; frames are
    dropped once encoded, so memory holds a few clips, not the set."""
    from tvau.pretrain.vision import render_videos

    whole, clips, batch = [], [], []

    def flush():
        encs = bb.encode_videos([f for _, _, f in batch])
        for (kind, d, _), e in zip(batch, encs):
            (whole if kind == "whole" else clips).append((d, e.video_embeds, e.grid_thw))
        batch.clear()

    for v, frames, _ in render_videos(world, stream, count, height, width, pool, world_dialogues):
        for a, b, turns in v.dialogue:
            if b - a == len(frames) or short:
                batch.append(("whole" if b - a == len(frames) else "short", turns, frames[a:b]))
        if len(batch) >= 8:
            flush()
    if batch:
        flush()
    return whole, clips


def _train(chat: _Chat, train: tuple[list, list], cfg: LanguageConfig, seed: int, ckpt, progress: bool) -> list[float]:
    """AdamW over the LM (embeddings, blocks, head) on shuffled dialogues, each sample a short clip
    with chance `short_share`, else a whole video (`train`: _encoded's pair); resumes from `ckpt`."""
    import torch

    from tvau.pretrain.checkpoint import load_checkpoint, save_checkpoint
    from tvau.pretrain.vision import lr_at

    bb = chat.bb
    params = [*bb.language_model.parameters(), *bb.model.lm_head.parameters()]
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    rng = np.random.default_rng([seed, 13])
    start, losses = 0, []
    state = load_checkpoint(ckpt)
    if state is not None:
        bb.language_model.load_state_dict(state["language_model"])
        bb.model.lm_head.load_state_dict(state["lm_head"])
        opt.load_state_dict(state["optimizer"])
        rng.bit_generator.state = state["rng"]
        start, losses = state["step"], state["losses"]
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=cfg.steps, initial=start, desc="pretrain language", unit="step")
    bb.language_model.train()
    for step in range(start, cfg.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(cfg.lr, cfg.warmup, cfg.steps, step)
        # One kind per batch: a batch pads to its longest sample, so a whole video among short
        # clips made nine batches in ten cost as whole videos.
        pool = train[1] if train[1] and rng.random() < cfg.short_share else train[0]
        batch = [pool[int(k)] for k in rng.integers(len(pool), size=cfg.batch)]
        loss = chat.loss(batch, [shuffled(d, rng) for d, _, _ in batch])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        losses.append(loss.item())
        if (step + 1) % cfg.checkpoint_every == 0 and step + 1 < cfg.steps:
            save_checkpoint(ckpt, {"step": step + 1, "language_model": bb.language_model.state_dict(),
                                   "lm_head": bb.model.lm_head.state_dict(), "optimizer": opt.state_dict(),
                                   "rng": rng.bit_generator.state, "losses": losses})
        if bar:
            bar.update()
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
    if bar:
        bar.close()
    bb.language_model.eval()
    for p in params:
        p.requires_grad_(False)
    return losses


# Which held-out question each generic field is read from: (field of parse_answer, question).
# The description of what is in a region is T-VAU's target answer in generic form: its category is
# not in the question, so it is read, not echoed.
GENERIC_FIELDS: tuple[tuple[str, str], ...] = (
    ("category", Q_DESCRIBE_AT), ("color", Q_DESCRIBE_AT), ("clothing", Q_DESCRIBE_AT),
    ("action", Q_DESCRIBE_AT), ("from_region", Q_FROM_TO), ("to_region", Q_FROM_TO),
)


def _generic_answers(chat: _Chat, held: list) -> list[dict]:
    """Per held-out video, per question of its dialogue: the generated answer beside the reference.
    Each question is asked after the dialogue's earlier turns of its unit, answered by the reference
    (as a user's follow-up after the model's own answer), so "it" is defined."""
    out = []
    for k in range(0, len(held), 8):
        chunk = held[k:k + 8]
        asks = []  # (video, question, reference, conversation)
        for v, (d, _, _) in enumerate(chunk):
            for unit in units(d):
                for j, (q, a) in enumerate(unit):
                    asks.append((v, q, a, [*unit[:j], (q, None)]))
        for i in range(0, len(asks), 8):
            part = asks[i:i + 8]
            said = chat.answer([chunk[v] for v, *_ in part], [c for *_, c in part])
            out += [{"video": k + v, "question": q, "reference": a, "answer": s} for (v, q, a, _), s in zip(part, said)]
    return out


def _field_accuracy(answers: list[dict], seed: int) -> tuple[dict, dict, dict]:
    """Per generic field: (point, 95% interval, constant). The share of held-out questions whose
    answer states the reference's value (an answer that does not state it is wrong), its bootstrap
    interval over videos (a video's questions drawn together), and what one constant answer, the most
    common reference value, scores on the same questions: a field means something only above it."""
    from collections import Counter

    from tvau.evaluate.bootstrap import interval, ratio_stat, resamples
    from tvau.metrics.fields import parse_answer

    point, ci, constant = {}, {}, {}
    for name, question in GENERIC_FIELDS:
        stem = question.split("{")[0]
        rows = []  # (video, reference value, stated right)
        for a in answers:
            ref = getattr(parse_answer(a["reference"]), name)
            if a["question"].startswith(stem) and ref is not None:
                rows.append((a["video"], ref, getattr(parse_answer(a["answer"]), name) == ref))
        if not rows:
            continue
        videos = sorted({v for v, _, _ in rows})
        num = np.array([sum(ok for v, _, ok in rows if v == w) for w in videos], dtype=float)
        den = np.array([sum(v == w for v, _, _ in rows) for w in videos], dtype=float)
        iv = interval(float(num.sum() / den.sum()), ratio_stat(num, den), resamples(len(videos), 1000, seed))
        point[name] = round(iv.value, 4)
        ci[name] = [round(iv.low, 4), round(iv.high, 4)]
        constant[name] = round(Counter(r for _, r, _ in rows).most_common(1)[0][1] / len(rows), 4)
    return point, ci, constant


def pretrain_language(vision_dir, out_dir, cfg: PretrainConfig, height: int, width: int, tiny_seed: int = 0,
                      progress: bool = True) -> dict:
    """Train the language model on the generic dialogues of `language.videos` world videos (stream 2)
    over the vision part's frozen tower, and write the embedded backbone to `out_dir`. Returns
    held-out metrics on `language.holdout_videos` videos of stream 3: answer-token accuracy (teacher
    forcing), the share of yes/no questions whose first answer token is the right one of "Yes"/"No",
    and the generic field accuracies of generated answers (GENERIC_FIELDS)."""
    from tvau.model.backbone import Backbone
    from tvau.model.preprocess import VisionPreprocessor
    from tvau.model.tiny import TINY_VERSION, tiny_preprocessor_config
    from tvau.pretrain.checkpoint import checkpoint_path
    from tvau.pretrain.vision import deterministic_threads, render_pool, save_model_dir

    lc = cfg.language
    vision_record = json.loads((Path(vision_dir) / "tvau_pretrain.json").read_text())
    settings = {"world": cfg.world.model_dump(), "language": lc.model_dump(), "clip": [height, width],
                "tiny_seed": tiny_seed, "vision": vision_record}
    with deterministic_threads(lc.threads):
        model, tok = language_model(vision_dir, lc, tiny_seed)
        bb = Backbone(model, tok, VisionPreprocessor.from_config(tiny_preprocessor_config()), source="pretraining",
                      taps=[0])
        pool = render_pool(cfg.world.render_workers)  # one start-up for both streams
        try:
            train = _encoded(bb, cfg.world, 2, lc.videos, height, width, pool, short=lc.short_share > 0)
            held, _ = _encoded(bb, cfg.world, 3, lc.holdout_videos, height, width, pool, short=False)
        finally:
            if pool is not None:
                pool.shutdown()
        chat = _Chat(bb)
        ckpt = checkpoint_path("language", settings, ["language", "vision", "world", "config"])
        losses = _train(chat, train, lc, cfg.world.seed, ckpt, progress)
        metrics = _held_out(chat, held, tok)
        answers = _generic_answers(chat, held)
        point, ci, constant = _field_accuracy(answers, cfg.world.seed)
        tail = losses[-max(1, lc.steps // 10):] if losses else [float("nan")]
        metrics = {"lm_steps": lc.steps, "lm_final_loss": round(float(np.mean(tail)), 4),
                   "lm_holdout_videos": len(held), **metrics,
                   "lm_holdout_field_accuracy": point, "lm_holdout_field_accuracy_ci": ci,
                   "lm_holdout_field_constant": constant}
        save_model_dir(out_dir, model, tok, {
            "part": "language", "tiny_version": TINY_VERSION, "tiny_seed": tiny_seed,
            "clip": {"height": height, "width": width},
            "pretrain": {"world": cfg.world.model_dump(), "language": lc.model_dump()},
            "vision": {k: vision_record[k] for k in ("pretrain", "categories", "actions", "appearance", "metrics")},
            "metrics": metrics, "examples": answers[:24],
        })
    ckpt.unlink(missing_ok=True)
    return metrics


def _held_out(chat: _Chat, held: list, tok) -> dict:
    """Answer tokens under teacher forcing, and Yes/No of the yes/no question asked first."""
    import torch

    yes, no = _yes_no_ids(tok)
    hits = total = yn_hits = yn_asked = 0
    with torch.no_grad():
        for k in range(0, len(held), 8):
            chunk = held[k:k + 8]
            logits, labels = chat.forward(chunk, [d for d, _, _ in chunk])
            pred, tgt = logits[:, :-1].argmax(-1), labels[:, 1:]
            m = tgt != -100
            hits += int((pred[m] == tgt[m]).sum())
            total += int(m.sum())
            yn = [(i, next(t for t in d if t[1].startswith(("Yes.", "No.")))) for i, (d, _, _) in enumerate(chunk)]
            logits, _ = chat.forward([chunk[i] for i, _ in yn], [[(q, None)] for _, (q, _) in yn])
            for (_, (_, a)), row in zip(yn, logits[:, -1]):
                yn_hits += int(bool(row[yes] > row[no]) == a.startswith("Yes"))
                yn_asked += 1
    return {"lm_holdout_answer_token_accuracy": round(hits / max(1, total), 4),
            "lm_holdout_yes_no_accuracy": round(yn_hits / max(1, yn_asked), 4)}
