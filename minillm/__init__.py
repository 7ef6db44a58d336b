"""minillm: a small GPT, its tokenizer and training loop, built to teach how an assistant is made."""
