"""The release in the Hugging Face format against minillm, on a real run: how close transformers comes.

Exports the run's base model and assistant (minillm.hf.export), loads each with transformers'
GPT2LMHeadModel and AutoTokenizer, and prints:
  - the largest logit difference over full-context batches of the world's text;
  - how many greedy replies to the held-out questions are identical token for token (each to its end
    token, which transformers reads from the export's generation_config.json);
  - how many of the corpus documents (and the held-out questions as chats) get identical token ids.

    pip install -e ".[hf]"
    python bench/hf_parity.py                       # runs/cpu, after `python -m minillm course`
    python bench/hf_parity.py --run runs/smoke --questions 20
"""
import argparse
import tempfile
from pathlib import Path

import minillm  # noqa: F401  (before torch: the thread policy)
import torch
from transformers import AutoTokenizer, GPT2LMHeadModel

from minillm import hf
from minillm.chat import base_prompt, is_chat_model, prompt_ids
from minillm.checkpoint import load_checkpoint
from minillm.data import corpus_tokens
from minillm.generate import generate
from minillm.tokenizer import Tokenizer
from minillm.world import load_world


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", default="runs/cpu")
    ap.add_argument("--questions", type=int, default=100, help="held-out questions to answer greedily")
    ap.add_argument("--max-new-tokens", type=int, default=48)
    args = ap.parse_args()
    run = Path(args.run)
    tok = Tokenizer.load(run / "tokenizer")
    world = load_world(run / "world")
    questions = [it.question for it in world.qa_items("heldout")[:args.questions]]
    stream, _ = corpus_tokens(world, tok)
    with tempfile.TemporaryDirectory() as out:
        for name in ("base", "assistant"):
            folder = hf.export(run, name, Path(out) / name)
            ours, _ = load_checkpoint(run / name, tokenizer=tok)
            ours.eval()
            theirs = GPT2LMHeadModel.from_pretrained(folder).eval()
            T = ours.config.block_size
            worst = 0.0
            with torch.no_grad():
                for start in range(0, min(len(stream) - T, 8 * 4 * T), 4 * T):
                    x = torch.stack([stream[start + i * T:start + (i + 1) * T] for i in range(4)])
                    logits = theirs(x, attention_mask=torch.ones_like(x)).logits
                    worst = max(worst, (ours(x)[0] - logits).abs().max().item())
            same = 0
            for q in questions:
                ids = prompt_ids(tok, [{"role": "user", "content": q}]) if is_chat_model(name) else base_prompt(tok, q)
                eos = theirs.generation_config.eos_token_id    # <|end|> for the assistant, <|bos|> for the base
                mine = generate(ours, torch.tensor([ids]), args.max_new_tokens, temperature=0.0, stop_tokens=(eos,))[0]
                got = theirs.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                      max_new_tokens=args.max_new_tokens, do_sample=False)[0, len(ids):].tolist()
                same += got == mine
            print(f"{name:9s} max |logits difference| {worst:.2e} over {8 * 4} windows of {T} tokens; "
                  f"greedy replies identical: {same}/{len(questions)} (each to its end token or {args.max_new_tokens} tokens)")
        hf_tok = AutoTokenizer.from_pretrained(Path(out) / "assistant")
        docs = [d.text for d in world.corpus()]
        same_docs = sum(hf_tok.encode(t, add_special_tokens=False) == tok.encode(t) for t in docs)
        chats = [[{"role": "user", "content": q}] for q in questions]
        same_chats = sum(hf_tok.apply_chat_template(c, add_generation_prompt=True, tokenize=True, return_dict=False)
                         == prompt_ids(tok, c) for c in chats)
        print(f"tokenizer: identical ids on {same_docs}/{len(docs)} documents, {same_chats}/{len(chats)} chats")


if __name__ == "__main__":
    main()
