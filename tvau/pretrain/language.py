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
- "What is <appearance> doing?" -> "It is riding a bicycle."
- "How does it move?" -> "It moves fast from the left to the right."
"""

from __future__ import annotations

import numpy as np

from tvau import vocab
from tvau.construct.dialogue import _cap as capitalised
from tvau.construct.dialogue import _listing as listing
from tvau.construct.motion import regions_visited
from tvau.construct.sentences import ACTION_PHRASE, appearance, trajectory
from tvau.questions import Q_DOING, Q_MOVE, Q_WHAT

# Speed thresholds (person heights per frame) of the generic motion words, as tvau.construct reads
# them off timelines: static, small movement, walking, fast.
_SPEEDS = ((0.004, "static"), (0.012, "small movement"), (0.05, "walking"))
MAX_NAMED = 3  # objects named in the answer to Q_WHAT (the largest in view)
MIN_VISIBLE_PX = 40  # an object counts as seen when it covers this many pixels over the video


def _motion_state(speed: float) -> str:
    for limit, word in _SPEEDS:
        if speed < limit:
            return word
    return "fast"


def world_dialogue(actors, scene, ids: np.ndarray, rng: np.random.Generator) -> list[tuple[str, str]]:
    """Generic (question, answer) turns about one rendered world video. `ids`: (T, S, S) id maps,
    so only what the camera shows is described."""
    size = ids.shape[-1]
    counts = np.bincount(ids.reshape(-1), minlength=max((a.oid for a in actors), default=0) + 1)
    seen = [a for a in actors if counts[a.oid] >= MIN_VISIBLE_PX
            and a.category != "ball"]  # a ball is a few pixels: the thrower is what one describes
    seen.sort(key=lambda a: -counts[a.oid])
    info = []
    for a in seen:
        t = np.flatnonzero(a.present)
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
        info.append({"who": appearance(a.category, a.look["colors"], a.look.get("clothing", "")),
                     "category": a.category, "action": act, "regions": regions_visited(regions, min_run=1),
                     "motion": motion})
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
    # One yes/no question, present or absent with equal chance, about a category or an action.
    cats = sorted({i["category"] for i in info})
    acts = sorted({i["action"] for i in info if i["category"] == "person"})
    if rng.random() < 0.5:
        pool = [c for c in vocab.CATEGORIES if c != "ball"]
        cat = pool[int(rng.integers(len(pool)))] if rng.random() < 0.5 or not cats else cats[int(rng.integers(len(cats)))]
        thing = appearance(cat, {})  # "a bicycle", "an ..."
        q = f"Is there {thing} in the video?"
        # "Yes." / "No." first, as T-VAU's dialogues answer (tvau.construct.dialogue): with "Yes, ..."
        # here, stage 2 met a "." after "Yes" that cost 7.9 nats and its decision stayed at chance.
        turns.append((q, f"Yes. There is {thing}." if cat in cats else f"No. There is no {cat}."))
    else:
        pool = [w for w in ACTION_PHRASE if w not in ("loitering", "gathering", "driving", "flying", "dropped")]
        act = pool[int(rng.integers(len(pool)))] if rng.random() < 0.5 or not acts else acts[int(rng.integers(len(acts)))]
        phrase = ACTION_PHRASE[act]
        who = next((i["who"] for i in info if i["category"] == "person" and i["action"] == act), None)
        turns.append((f"Is anyone {phrase}?", f"Yes. {capitalised(who)} is {phrase}." if who
                      else f"No. Nobody is {phrase}."))
    if info:
        i = info[int(rng.integers(len(info)))]
        turns.append((Q_DOING.format(who=i["who"]), f"It is {ACTION_PHRASE[i['action']]}."))
        turns.append((Q_MOVE, f"It {trajectory(i['regions'], i['motion'])}."))
    return turns


def shuffled(turns: list[tuple[str, str]], order) -> list[tuple[str, str]]:
    """The turns of world_dialogue in another order of its three units (what is there; the yes/no
    question; what one object does and how it moves, which stay together since "it" refers back).
    Training on every order makes the model answer the question asked, not the turn's position."""
    units = [turns[:1], turns[1:2], turns[2:4]]
    return [t for k in order for t in units[int(k)] if units[int(k)]]


def _yes_no_ids(tok) -> tuple[int, int]:
    return tok.encode("Yes", add_special_tokens=False)[0], tok.encode("No", add_special_tokens=False)[0]


def pretrain_language(model, tok, cfg, height: int, width: int, progress: bool = True) -> dict:
    """Train the language model of `model` (in place; vision tower and merger frozen) on the generic
    dialogues of `cfg.lm_videos` world videos (stream 2). Returns held-out metrics on
    `cfg.lm_holdout_videos` videos of stream 3: answer-token accuracy (teacher forcing) and the share
    of yes/no questions whose first answer token is the right one of "Yes"/"No"."""
    import torch

    from tvau.model.backbone import Backbone
    from tvau.model.chat import answer_loss, left_padded_labels
    from tvau.model.preprocess import VisionPreprocessor
    from tvau.model.tiny import tiny_preprocessor_config
    from tvau.pretrain.train import lr_at, render_pool, render_videos

    bb = Backbone(model, tok, VisionPreprocessor.from_config(tiny_preprocessor_config()), source="pretraining",
                  taps=[0])

    def encoded(stream: int, count: int, pool) -> list[tuple]:
        """(dialogue, merged vision tokens, grid) per video, 8 clips per vision call; frames are
        dropped once encoded, so memory holds 8 clips, not the set."""
        out, batch = [], []
        for k, (v, frames, _) in enumerate(render_videos(cfg, stream, count, height, width, pool)):
            batch.append((v.dialogue, frames))
            if len(batch) == 8 or k == count - 1:
                encs = bb.encode_videos([f for _, f in batch])
                out += [(d, e.video_embeds, e.grid_thw) for (d, _), e in zip(batch, encs)]
                batch = []
        return out

    pool = render_pool(cfg.render_workers)  # one start-up for both streams
    try:
        train, held = encoded(2, cfg.lm_videos, pool), encoded(3, cfg.lm_holdout_videos, pool)
    finally:
        if pool is not None:
            pool.shutdown()
    params = [*bb.language_model.parameters(), *bb.model.lm_head.parameters()]
    for p in params:
        p.requires_grad_(True)

    def inputs(samples, conversations):
        per = []
        for (_, emb, grid), turns in zip(samples, conversations):
            prompt = bb.prompt(turns, grid)
            per.append((prompt, bb.embed(prompt, emb), bb.position_ids(prompt, grid)))
        embeds, mask, pos = bb.batch_inputs([p[1] for p in per], [p[2] for p in per])
        return [p[0] for p in per], embeds, mask, pos

    def forward(samples, conversations):
        prompts, embeds, mask, pos = inputs(samples, conversations)
        out = bb.language_model(inputs_embeds=embeds, attention_mask=mask, position_ids=pos, use_cache=False)
        logits = bb.model.lm_head(out.last_hidden_state)
        return logits, left_padded_labels(prompts, logits.shape[1])

    opt = torch.optim.AdamW(params, lr=cfg.lm_lr, weight_decay=cfg.weight_decay)
    rng = np.random.default_rng([cfg.seed, 13])
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=cfg.lm_steps, desc="pretrain language", unit="step")
    losses = []
    bb.language_model.train()
    for step in range(cfg.lm_steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(cfg.lm_lr, cfg.lm_warmup, cfg.lm_steps, step)
        batch = [train[int(i)] for i in rng.integers(len(train), size=cfg.lm_batch)]
        logits, labels = forward(batch, [shuffled(d, rng.permutation(3)) for d, _, _ in batch])
        loss = answer_loss(logits, labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        losses.append(loss.item())
        if bar:
            bar.update()
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
    if bar:
        bar.close()
    bb.language_model.eval()
    for p in params:
        p.requires_grad_(False)
    # Held-out: answer tokens under teacher forcing, and Yes/No on the yes/no turn (turn 2).
    yes, no = _yes_no_ids(tok)
    hits = total = yn_hits = 0
    with torch.no_grad():
        for k in range(0, len(held), 8):
            chunk = held[k:k + 8]
            logits, labels = forward(chunk, [d for d, _, _ in chunk])
            pred, tgt = logits[:, :-1].argmax(-1), labels[:, 1:]
            m = tgt != -100
            hits += int((pred[m] == tgt[m]).sum())
            total += int(m.sum())
            # The yes/no question asked first, straight after the clip.
            logits, _ = forward(chunk, [[(d[1][0], None)] for d, _, _ in chunk])
            for (d, _, _), row in zip(chunk, logits[:, -1]):
                said_yes = bool(row[yes] > row[no])
                yn_hits += int(said_yes == d[1][1].startswith("Yes"))
    tail = losses[-max(1, cfg.lm_steps // 10):]
    return {"lm_steps": cfg.lm_steps, "lm_final_loss": round(float(np.mean(tail)), 4),
            "lm_holdout_videos": len(held), "lm_holdout_answer_token_accuracy": round(hits / max(1, total), 4),
            "lm_holdout_yes_no_accuracy": round(yn_hits / max(1, len(held)), 4)}
