"""The side-by-side widget and its plain-table twin: each model gets its own prompt format and stop
tokens, no special token is ever shown, a long conversation fits the context, the handler fills both
panels, and everything works without a widget frontend."""
import io
from types import SimpleNamespace

import pytest
import torch

from minillm import chat as chat_template
from minillm import widgets
from minillm.chat import base_prompt
from minillm.model import GPT, GPTConfig
from minillm.tokenizer import Tokenizer

TEXT = "Where was Kalin Moravo born? Kalin Moravo was born in Tessaly. She works for Vantrel Systems. " * 20


@pytest.fixture(scope="module")
def tok():
    return Tokenizer.train(TEXT, 256 + 4 + 16)


@pytest.fixture(scope="module")
def model(tok):
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=64, n_layer=1, n_head=2, n_embd=16)).eval()


class Scripted:
    """A stand-in model that records its prompt and emits fixed tokens (stopping like GPT.stream)."""

    def __init__(self, tokens):
        self.tokens, self.prompts = tokens, []
        self._p = torch.nn.Parameter(torch.zeros(1))

    def parameters(self):
        return iter([self._p])

    def stream(self, idx, max_new_tokens, *, stop_tokens=(), **kwargs):
        self.prompts.append((idx[0].tolist(), tuple(stop_tokens)))
        for t in self.tokens[:max_new_tokens]:
            yield t
            if t in stop_tokens:
                return


def test_each_model_gets_its_own_prompt_and_stop_token(tok):
    hello = tok.encode("Hello")
    base, assistant = Scripted(hello + [tok.bos_id]), Scripted(hello + [tok.end_id])
    rows = widgets.compare(["Where was Kalin Moravo born?"], base, assistant, tok)
    specials = tuple(sorted(tok.special_tokens.values()))
    assert base.prompts == [(base_prompt(tok, "Where was Kalin Moravo born?"), specials)]
    want = chat_template.prompt_ids(tok, [{"role": "user", "content": "Where was Kalin Moravo born?"}])
    assert assistant.prompts == [(want, specials)]
    p = chat_template.prompt_and_stops(tok, "Where was Kalin Moravo born?", as_chat=True)
    assert (p.ids, p.stops) == (want, specials) and chat_template.stop_tokens(tok) == specials
    assert rows == [{"prompt": "Where was Kalin Moravo born?", "base": "Hello", "base_stopped": True,
                     "assistant": "Hello", "assistant_stopped": True}]


def test_stream_reply_reports_a_cut_at_the_length_limit(tok):
    m = Scripted(tok.encode("Kalin Moravo was born in Tessaly."))
    steps = list(chat_template.stream_reply(m, tok, "Hi", as_chat=True, max_new_tokens=3))
    assert len(steps) == 3 and steps[-1][1] is False
    assert steps[-1][0] == tok.decode(tok.encode("Kalin Moravo was born in Tessaly.")[:3])
    # a model that stops at once gives one empty, stopped reply
    assert list(chat_template.stream_reply(Scripted([tok.end_id]), tok, "Hi", as_chat=True)) == [("", True)]


@pytest.mark.parametrize("as_chat", [True, False])
@pytest.mark.parametrize("special", ["<|bos|>", "<|user|>", "<|assistant|>", "<|end|>"])
def test_a_reply_stops_at_any_special_token_and_never_shows_one(tok, special, as_chat):
    # a model that runs on past its turn into a new document or a made-up next turn
    m = Scripted(tok.encode("Tessaly.") + [tok.special_tokens[special]] + tok.encode(" Does anyone know?"))
    steps = list(chat_template.stream_reply(m, tok, "Where was Kalin Moravo born?", as_chat=as_chat))
    assert steps[-1] == ("Tessaly.", True)
    assert all("<|" not in text for text, _ in steps)
    assert chat_template.reply(m, tok, "Hi", as_chat=as_chat) == "Tessaly."


def test_a_long_conversation_keeps_whole_recent_turns_within_the_context(tok):
    m = Scripted(tok.encode("Tessaly.") + [tok.end_id])
    m.config = SimpleNamespace(block_size=64)
    conversation = []
    for _ in range(4):
        conversation += [{"role": "user", "content": "Where was Kalin Moravo born?"},
                         {"role": "assistant", "content": "Kalin Moravo was born in Tessaly."}]
    conversation.append({"role": "user", "content": "And where does she work?"})
    assert chat_template.reply(m, tok, conversation, max_new_tokens=16) == "Tessaly."
    ids, _ = m.prompts[-1]
    want = chat_template.prompt_and_stops(tok, conversation, as_chat=True, block_size=64, max_new_tokens=16)
    assert ids == want.ids and len(ids) <= 64 - 16 and want.dropped_turns > 0
    assert ids == chat_template.prompt_ids(tok, conversation[want.dropped_turns:])
    with pytest.raises(ValueError, match="this model reads at most 44: shorten it"):
        chat_template.reply(m, tok, "Kalin " * 60, max_new_tokens=16)


def test_print_stream_waits_for_the_rest_of_a_multibyte_character(tok):
    class Chunks(io.StringIO):
        def write(self, s):
            self.chunks = getattr(self, "chunks", []) + [s]
            return super().write(s)

    ids = tok.encode("a山b")                       # 山 is three byte tokens in this tokenizer
    assert len(ids) == 5
    out = Chunks()
    text, stopped = chat_template.print_stream(chat_template.stream_reply(Scripted(ids + [tok.end_id]), tok, "Hi", as_chat=True),
                                         file=out)
    assert (text, stopped) == ("a山b", True)
    assert out.getvalue() == "a山b\n" and not any("\ufffd" in c for c in out.chunks)


def test_reply_samples_reproducibly_with_a_seed(tok, model):
    kwargs = dict(as_chat=True, max_new_tokens=8, temperature=1.0, seed=3)
    assert chat_template.reply(model, tok, "Hello", **kwargs) == chat_template.reply(model, tok, "Hello", **kwargs)


def test_asking_again_at_a_temperature_draws_another_sample(tok, model):
    """The n-th question asked samples with seed n, so five asks give five samples (a fixed seed gave one)."""
    ui = widgets.SideBySide(model, model, tok, max_new_tokens=8, temperature=1.0)
    rows = [ui.ask("Hello") for _ in range(3)]
    for n, row in enumerate(rows):
        for name, as_chat in (("base", False), ("assistant", True)):
            assert row[name] == chat_template.reply(model, tok, "Hello", as_chat=as_chat, max_new_tokens=8,
                                                    temperature=1.0, seed=n)


def test_widget_handler_streams_both_answers_into_the_panels(tok, model):
    pytest.importorskip("ipywidgets")
    ui = widgets.side_by_side(model, model, tok, max_new_tokens=8)
    assert ui.widget is not None
    ui.prompt.value = "Where was Kalin Moravo born?"
    ui.button.click()                                   # what the frontend does on a click
    row = ui.history[-1]
    assert row["prompt"] == "Where was Kalin Moravo born?"
    assert row["base"] and row["assistant"]             # a random model still writes something
    for panel, text in zip(ui.panels, (row["base"], row["assistant"])):
        assert panel.value.startswith("<pre") and ("stopped" in panel.value or "length limit" in panel.value)
    # the same greedy answers as the non-interactive table
    table_row = widgets.compare([row["prompt"]], model, model, tok, max_new_tokens=8)[0]
    assert (table_row["base"], table_row["assistant"]) == (row["base"], row["assistant"])
    with pytest.raises(ValueError, match="prompt"):
        ui.ask("   ")


def test_without_ipywidgets_the_handler_still_answers(tok, model, monkeypatch, capsys):
    import builtins
    real_import = builtins.__import__

    def no_ipywidgets(name, *args, **kwargs):
        if name == "ipywidgets":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ipywidgets)
    ui = widgets.side_by_side(model, model, tok, max_new_tokens=6)
    assert ui.widget is None
    row = ui.ask("Hello")
    assert row == widgets.compare(["Hello"], model, model, tok, max_new_tokens=6)[0]   # the same greedy answers
    ui._ipython_display_()
    assert "ipywidgets is not installed" in capsys.readouterr().out


def test_format_table_wraps_and_marks_how_each_reply_ended():
    rows = [{"prompt": "Where was Kalin Moravo born?", "base": "Does anyone know?\nBump.", "base_stopped": False,
             "assistant": "Kalin Moravo was born in Tessaly.", "assistant_stopped": True}]
    table = widgets.format_table(rows, width=20)
    lines = table.splitlines()
    assert lines[0].split("|")[0].strip() == "prompt"
    assert "⏹" in table and "…" in table and "⏎" in table
    assert all(len(line) <= 3 * 20 + 6 for line in lines)
    assert widgets.format_table([]) == "(no rows)"
    short = widgets.format_table([{"prompt": "Hi", "base": "word " * 40}], width=20, max_lines=3).splitlines()
    assert [line.split("|")[1].strip() for line in short[2:5]] == ["word word word word", "word word word word",
                                                                   "[8 more lines]"]
    assert len(short) == 6      # header, rule, three lines, rule
    cut = widgets.format_table([{"prompt": "Hi", "base": "word " * 40, "base_stopped": True}], width=20, max_lines=3)
    assert cut.splitlines()[4].split("|")[1].strip() == "[9 more lines] ⏹"     # how the reply ended stays shown
