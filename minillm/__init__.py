"""minillm: a small GPT, its tokenizer and training loop, built to teach how an assistant is made."""
from minillm import threads as _threads

_threads.choose_at_import()  # before anything imports torch: OpenMP reads its wait policy when torch loads
