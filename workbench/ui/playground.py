"""The Playground tab: chat with one model version, or two side by side. The replies come from the model
worker process (workbench.playground), never from weights loaded in the server."""

from __future__ import annotations

import gradio as gr

from workbench.playground import Playground, PlaygroundError
from workbench.store import as_chat
from workbench.ui.access import Access
from workbench.ui.label import chat_box
from workbench.ui.render import user_markdown


def text_of(content) -> str:
    """A Chatbot message's text (Gradio may hand back a list of parts)."""
    if isinstance(content, list):
        return " ".join(part.get("text", "") if isinstance(part, dict) else str(part) for part in content)
    return content if isinstance(content, str) else str(content)


class PlaygroundTab:
    def __init__(self, playground: Playground, access: Access):
        self.playground, self.access = playground, access
        with gr.Row():
            self.version_a = gr.Dropdown([], value="base", label="Version", allow_custom_value=True, elem_id="play-a")
            self.version_b = gr.Dropdown([], value=None, label="Side by side with (optional)",
                                         allow_custom_value=True, elem_id="play-b")
            self.temperature = gr.Number(value=0.7, label="Temperature", elem_id="play-temperature")
        self.system = gr.Textbox(label="System prompt (optional)", elem_id="play-system")
        with gr.Row():
            # no toolbar over the first turn (the default share and copy-all buttons sat on it): a copy button
            # per message instead; the box follows the newest reply, as a chat does, and scrolls back to the first
            self.chat_a = chat_box(label="Version", elem_id="chat-a", height=320, buttons=["copy"])
            self.chat_b = chat_box(label="Side by side", elem_id="chat-b", height=320, buttons=["copy"])
        # The chats show rendered HTML (workbench/ui/render.py); the turns' own text stays in the session.
        self.turns_a, self.turns_b = gr.State([]), gr.State([])
        self.message = gr.Textbox(label="Message (Enter sends)", elem_id="play-message")
        with gr.Row():
            self.send = gr.Button("Send", variant="primary", elem_id="play-send")
            self.clear = gr.Button("Clear", elem_id="play-clear")

    def wire(self) -> None:
        playground, access = self.playground, self.access

        def play(version_a, version_b, temperature, system, message, history_a, history_b, turns_a, turns_b,
                 request: gr.Request):
            """history_*: what the chats show (an API caller passes its own turns there); turns_*: the
            session's turns as text, which the page's rendered history cannot give back."""
            access.reviewer(request)
            message = (message or "").strip()
            if not message:
                raise gr.Error("write a message first")
            out = []
            for version, history, kept in ((version_a or "base", history_a, turns_a), (version_b, history_b, turns_b)):
                turns = kept if kept and history else [{"role": m["role"], "content": text_of(m["content"])}
                                                        for m in history or []]
                if not version:
                    out.append(turns)
                    continue
                turns = turns + [{"role": "user", "content": message}]
                try:
                    reply = playground.reply(version, as_chat(system, turns), temperature=float(temperature or 0.0))
                except PlaygroundError as exc:
                    raise gr.Error(str(exc)) from None
                out.append(turns + [{"role": "assistant", "content": reply}])
            shown = [[{"role": t["role"], "content": user_markdown(t["content"])} for t in turns] for turns in out]
            return shown[0], shown[1], "", out[0], out[1]

        inputs = [self.version_a, self.version_b, self.temperature, self.system, self.message, self.chat_a,
                  self.chat_b, self.turns_a, self.turns_b]
        outputs = [self.chat_a, self.chat_b, self.message, self.turns_a, self.turns_b]
        self.send.click(play, inputs=inputs, outputs=outputs, api_name="playground")
        self.message.submit(play, inputs=inputs, outputs=outputs, api_name=False)
        self.clear.click(lambda: ([], [], "", [], []), outputs=outputs, api_name=False)
