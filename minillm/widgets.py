"""The base model and the assistant side by side: type a prompt, watch both answer.

The course's central comparison, made interactive (`side_by_side`), or printed as a table (`compare`). The
prompts and the streaming are minillm.chat's; minillm.evaluate scores the same kind of replies in bulk.
"""

from __future__ import annotations

import html
import textwrap

from minillm.chat import stream_reply


def compare(prompts, base, assistant, tok, *, max_new_tokens: int = 48, labels=("base", "assistant"),
            as_chat=(False, True)) -> list[dict]:
    """The non-interactive version of the widget: rows for a printed table (`format_table`), the same greedy
    answers the widget shows.

    Every prompt to both models (greedy) -> rows {"prompt", labels[0], labels[1]} plus
    "<label>_stopped" (did the model end by itself). `as_chat` says how each model reads the prompt;
    pass as_chat=(True, True) to compare two assistants."""
    rows = []
    for p in prompts:
        row = {"prompt": p}
        for label, model, chat in zip(labels, (base, assistant), as_chat):
            text, stopped = "", False
            for text, stopped in stream_reply(model, tok, p, as_chat=chat, max_new_tokens=max_new_tokens):
                pass
            row[label], row[f"{label}_stopped"] = text, stopped
        rows.append(row)
    return rows


def format_table(rows: list[dict], *, width: int = 38, columns=None, max_lines: int | None = None) -> str:
    """Rows from compare() as a plain-text table, each cell wrapped to `width` characters. A reply the
    model ended itself is marked ⏹, one cut by the length limit ends in …; newlines show as ⏎. max_lines:
    show at most that many lines of a cell, the last one saying how many more there were."""
    if not rows:
        return "(no rows)"
    columns = list(columns or [k for k in rows[0] if not k.endswith("_stopped")])

    def cell(row, key):
        text = str(row[key]).strip().replace("\n", " ⏎ ")
        end = (" ⏹" if row[f"{key}_stopped"] else " …") if f"{key}_stopped" in row else ""
        lines = textwrap.wrap(text + end, width) or [""]
        if max_lines and len(lines) > max_lines:    # the last line keeps how the reply ended
            lines = lines[:max(max_lines - 1, 1)] + [f"[{len(lines) - max(max_lines - 1, 1)} more lines]{end}"]
        return lines

    sep = "-+-".join("-" * width for _ in columns)
    lines = [" | ".join(c.ljust(width) for c in columns), sep]
    for row in rows:
        cells = [cell(row, c) for c in columns]
        for i in range(max(len(c) for c in cells)):
            lines.append(" | ".join((c[i] if i < len(c) else "").ljust(width) for c in cells))
        lines.append(sep)
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# the widget

_PRE = ('<pre style="white-space:pre-wrap;word-break:break-word;min-height:4em;margin:0;padding:6px;'
        'border:1px solid #ccc;border-radius:4px;background:#fafafa">{}</pre>')


def _panel_html(text: str, state: str) -> str:
    mark = {"running": " ▌", "stopped": '  <span style="color:#2a7">⏹ stopped</span>',
            "cut": '  <span style="color:#c60">… length limit</span>', "": ""}[state]
    return _PRE.format(html.escape(text) + mark)


class SideBySide:
    """The UI: a prompt box, a button, sliders for length and temperature, and one panel per model.

    Each model gets the prompt the way it was trained to read it:

        base model  <|bos|> prompt newline ...            a document; it stops at the next <|bos|>
                                                          (the end of the document) or the length limit
        assistant   <|bos|> <|user|> prompt <|end|> <|assistant|> ...   the chat template; it stops at <|end|>

    `ask(prompt)` is the button's handler: it streams both replies into the panels and returns
    {"prompt", "base", "assistant", "base_stopped", "assistant_stopped"}. It works with or without
    a frontend; `widget` is None when ipywidgets is not installed.
    """

    def __init__(self, base, assistant, tok, *, max_new_tokens: int = 48, temperature: float = 0.0,
                 labels=("base model (continues the document)", "assistant (chat template)"), prompt: str = ""):
        self.base, self.assistant, self.tok = base, assistant, tok
        self.max_new_tokens, self.temperature = max_new_tokens, temperature
        self.labels = labels
        self.history: list[dict] = []
        try:
            import ipywidgets as w
        except ImportError:
            self.widget = None
            return
        self.prompt = w.Text(value=prompt, placeholder="Ask something, e.g. Where was <a name> born?",
                             layout=w.Layout(width="60%"))
        self.button = w.Button(description="Ask both", button_style="primary")
        self.length = w.IntSlider(value=max_new_tokens, min=8, max=200, step=8, description="max tokens")
        self.temp = w.FloatSlider(value=temperature, min=0.0, max=1.5, step=0.1, description="temperature")
        self.panels = [w.HTML(_panel_html("", "")), w.HTML(_panel_html("", ""))]
        columns = [w.VBox([w.HTML(f"<b>{html.escape(label)}</b>"), panel], layout=w.Layout(width="50%"))
                   for label, panel in zip(labels, self.panels)]
        self.button.on_click(lambda _: self.ask())
        self.widget = w.VBox([w.HBox([self.prompt, self.button]), w.HBox([self.length, self.temp]),
                              w.HBox(columns)])

    def ask(self, prompt: str | None = None) -> dict:
        """Stream both models' replies to `prompt` (default: the text box) into the panels.

        Both replies stream in token by token (minillm.chat.stream_reply), one token of each in turn. Any
        other special token ends a reply too (a model running on past its turn), and none is ever shown as text;
        a conversation longer than the context keeps its newest whole turns (minillm.chat.prompt_and_stops)."""
        if prompt is None:
            prompt = self.prompt.value if self.widget is not None else ""
        elif self.widget is not None:
            self.prompt.value = prompt
        prompt = prompt.strip()
        if not prompt:
            raise ValueError("type a prompt first")
        if self.widget is not None:
            max_new, temperature = self.length.value, self.temp.value
        else:
            max_new, temperature = self.max_new_tokens, self.temperature
        # the n-th question asked samples with seed n: asked again at a temperature above 0, a question gets
        # another sample (greedy replies never change); a fresh widget repeats the same sequence
        seed = len(self.history)
        streams = [stream_reply(m, self.tok, prompt, as_chat=chat, max_new_tokens=max_new, temperature=temperature,
                                seed=seed)
                   for m, chat in ((self.base, False), (self.assistant, True))]
        texts, stopped, live = ["", ""], [False, False], [True, True]
        while any(live):   # one token of each model in turn, so both answers grow together
            for i, s in enumerate(streams):
                if not live[i]:
                    continue
                try:
                    texts[i], stopped[i] = next(s)
                    self._show(i, texts[i], "running")
                except StopIteration:
                    live[i] = False
                    self._show(i, texts[i], "stopped" if stopped[i] else "cut")
        row = {"prompt": prompt, "base": texts[0], "assistant": texts[1],
               "base_stopped": stopped[0], "assistant_stopped": stopped[1]}
        self.history.append(row)
        return row

    def _show(self, i: int, text: str, state: str):
        if self.widget is not None:
            self.panels[i].value = _panel_html(text, state)

    def _ipython_display_(self):
        from IPython.display import display
        if self.widget is None:
            print("ipywidgets is not installed (pip install ipywidgets): call .ask('your prompt') instead, "
                  "or use minillm.widgets.compare for a table")
        else:
            display(self.widget)


def side_by_side(base, assistant, tok, **kwargs) -> SideBySide:
    """The interactive comparison; display it (last line of a cell) and type a prompt.
    Keyword arguments: max_new_tokens, temperature, labels, prompt (see SideBySide).

    This builds the ipywidgets UI. Where there is no widget frontend (nbmake, a terminal) nothing breaks: the
    widget is built but simply not drawn, its handler `ask(prompt)` still works and returns the answers, and
    without ipywidgets installed the object prints a note instead."""
    return SideBySide(base, assistant, tok, **kwargs)


__all__ = ["side_by_side", "SideBySide", "compare", "format_table"]
