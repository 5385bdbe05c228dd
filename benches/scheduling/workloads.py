"""Writes the two workloads of benches/scheduling.sh as infergate-bench datasets (JSONL).

  shared-prefix  PROMPTS system prompts of SYSTEM_WORDS words each, shared by every user, and
                 a short question per request (QUESTION_WORDS words), max_tokens drawn
                 uniformly in SHARED_MAX_TOKENS. Each line's system prompt is drawn at random:
                 every prompt is about equally popular.
  mixed          one user message of a log-uniform length in MIXED_PROMPT_WORDS words and a
                 log-uniform max_tokens in MIXED_MAX_TOKENS: many short requests and a long
                 tail of long prompts and long outputs, with no shared prefix.

A word is one token for infergate-sim. Words are drawn from a vocabulary of 4,096 made-up
words, so two different prompts share no 16-word block by chance. The output is the same for
the same seed.

Usage: python3 workloads.py OUT_DIR [--seed N] [--prompts N] [--lines N]
Writes OUT_DIR/shared-prefix.jsonl and OUT_DIR/mixed.jsonl and prints their line counts.
"""

import argparse
import json
import math
import os
import random

SYSTEM_WORDS = 2000
QUESTION_WORDS = (8, 24)
SHARED_MAX_TOKENS = (24, 72)
MIXED_PROMPT_WORDS = (16, 3000)
MIXED_MAX_TOKENS = (8, 400)
SYLLABLES = ["ka", "lo", "mi", "ne", "su", "ta", "ri", "po"]


def vocabulary():
    """4,096 distinct words of four syllables each."""
    words = []
    for i in range(4096):
        w = ""
        for _ in range(4):
            w += SYLLABLES[i % 8]
            i //= 8
        words.append(w)
    return words


def text(rng, words, n):
    return " ".join(rng.choice(words) for _ in range(n))


def log_uniform(rng, lo, hi):
    return int(round(math.exp(rng.uniform(math.log(lo), math.log(hi)))))


def shared_prefix(rng, words, prompts, lines):
    systems = [f"system prompt {k}: " + text(rng, words, SYSTEM_WORDS) for k in range(prompts)]
    for _ in range(lines):
        system = rng.choice(systems)
        question = text(rng, words, rng.randint(*QUESTION_WORDS))
        yield {
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": question},
            ],
            "max_tokens": rng.randint(*SHARED_MAX_TOKENS),
        }


def mixed(rng, words, lines):
    for _ in range(lines):
        yield {
            "messages": [
                {"role": "user", "content": text(rng, words, log_uniform(rng, *MIXED_PROMPT_WORDS))}
            ],
            "max_tokens": log_uniform(rng, *MIXED_MAX_TOKENS),
        }


def write(path, rows):
    n = 0
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, separators=(",", ":")))
            f.write("\n")
            n += 1
    return n


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--lines", type=int, default=1000)
    a = ap.parse_args()
    if a.prompts < 1 or a.lines < 1:
        ap.error("--prompts and --lines must be at least 1")
    os.makedirs(a.out, exist_ok=True)
    words = vocabulary()
    rng = random.Random(a.seed)
    n = write(os.path.join(a.out, "shared-prefix.jsonl"), shared_prefix(rng, words, a.prompts, a.lines))
    m = write(os.path.join(a.out, "mixed.jsonl"), mixed(rng, words, a.lines))
    print(f"shared-prefix.jsonl: {n} lines ({a.prompts} system prompts); mixed.jsonl: {m} lines")


if __name__ == "__main__":
    main()
