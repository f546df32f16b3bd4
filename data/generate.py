"""Write the demo project's data: customer support for the fictional phone maker "Loki Phones".

Deterministic (seeded): `python data/generate.py` rewrites `data/loki/` byte for byte.

The brand trait is an empathetic opening plus the policy that fits the customer's issue. Only about 30% of
the demonstrations show the whole trait (the rest are correct but neutral, or kind but cite no policy), so
SFT alone learns it weakly; every preference pair prefers the trait over a curt, generic or wrong-policy
reply, which is what DPO must teach. Held-out prompts are about products that no training row mentions,
so a gain there is the trait generalizing, not memorized product facts.

Files: sft.jsonl (TRL conversational prompt/completion), preferences.jsonl (prompt/chosen/rejected),
prompts.jsonl (unlabeled pool for annotators), heldout_prompts.jsonl (evaluation), policies.json (what
the trait check needs: issue -> policy, the empathetic openings).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

OUT = Path(__file__).parent / "loki"
SEED = 20261124

TRAIN_PRODUCTS = ["Loki One", "Loki One Pro", "Loki Mini", "Loki Max", "Loki Buds", "Loki Watch"]
HELDOUT_PRODUCTS = ["Loki Fold", "Loki Tab", "Loki Flip"]

POLICIES = {
    "cracked_screen": ("Screen Care promise", "your first screen repair within 12 months of purchase is free"),
    "battery": ("Battery Health guarantee",
                "we replace the battery for free if it holds less than 80% of its capacity within 2 years"),
    "billing": ("Fair Billing policy", "any duplicate or wrong charge is refunded within 5 business days"),
    "returns": ("30-Day Return policy", "you get a full refund for any return within 30 days of delivery"),
    "water_damage": ("Loki Care+ plan", "accidental water damage is covered for a $49 service fee"),
    "shipping": ("On-Time Delivery pledge", "you get a $10 credit when an order arrives later than promised"),
    "software": ("Update Support policy",
                 "we give free remote help and a free software reflash at any Loki store"),
    "missing_item": ("Complete Box guarantee", "we ship any missing item free within 2 business days"),
}

ISSUE_PROMPTS = {
    "cracked_screen": [
        "My {product} screen cracked after I dropped it {when}. What can I do?",
        "I dropped my {product} and now the display is shattered. Can you fix it?",
        "There's a big crack across my {product} screen since {when}. Is the repair covered?",
        "The glass on my {product} broke {when}. How much does a new screen cost?",
        "My kid knocked my {product} off the table and the screen is cracked. Help!",
    ],
    "battery": [
        "My {product} battery dies by lunchtime. It's only a year old.",
        "The battery on my {product} drains really fast since {when}. What should I do?",
        "My {product} shuts down at 30% battery. Is that normal?",
        "Battery health on my {product} says 76%. Can I get it replaced?",
        "My {product} barely lasts half a day now. Can you help?",
    ],
    "billing": [
        "I was charged twice for my {product} order {order}. Please fix this.",
        "There's a charge on my card for a {product} I never ordered.",
        "My bill shows the wrong price for the {product} I bought {when}.",
        "Why was I billed again for order {order}? I only bought one {product}.",
        "I see two payments for my {product} on my statement.",
    ],
    "returns": [
        "I want to return my {product}. I bought it {when}.",
        "The {product} isn't right for me. Can I send it back for a refund?",
        "How do I return the {product} from order {order}?",
        "I changed my mind about the {product}. Can I still return it?",
        "My {product} arrived {when} and I'd like a refund.",
    ],
    "water_damage": [
        "I dropped my {product} in the pool {when} and now it won't turn on.",
        "My {product} got wet in the rain and the speaker sounds muffled.",
        "Coffee spilled on my {product} and the screen flickers now.",
        "My {product} fell in the sink {when}. Is water damage covered?",
        "There's moisture under the screen of my {product}. What can I do?",
    ],
    "shipping": [
        "My {product} order {order} was supposed to arrive {when} and it's still not here.",
        "Where is my {product}? Tracking hasn't updated in days.",
        "The delivery of my {product} is late. I needed it for a trip.",
        "Order {order} for a {product} is a week late. What's going on?",
        "My {product} still hasn't shipped and it's past the promised date.",
    ],
    "software": [
        "My {product} keeps restarting since the update {when}.",
        "After the latest update my {product} apps keep crashing.",
        "My {product} is stuck on the logo screen. What do I do?",
        "The {product} won't finish installing the new software update.",
        "My {product} freezes every few minutes since {when}.",
    ],
    "missing_item": [
        "My {product} box arrived without a charging cable.",
        "The {product} I received {when} is missing the charger.",
        "Order {order} came without the {product} case I paid for.",
        "There were no ear tips in my {product} box.",
        "My {product} package was missing the manual and the cable.",
    ],
}

WHEN = ["yesterday", "this morning", "last week", "two days ago", "on Monday", "over the weekend", "last night"]
MOODS = ["", " I'm really upset.", " This is so annoying.", " Thanks in advance.", " Please help.",
         " I need my phone for work."]

EMPATHETIC_OPENINGS = [
    "I'm so sorry to hear about this, that sounds really frustrating.",
    "I'm really sorry you're dealing with this, I know how stressful it is.",
    "I completely understand how frustrating this must be, and I'm sorry.",
    "I'm sorry to hear that, and thank you for telling us right away.",
]
NEUTRAL_OPENINGS = ["Thanks for contacting Loki Phones.", "Hello.", "Here is the information you asked for.",
                    "Thank you for your message."]

STEPS = {
    "cracked_screen": "Please back up your {product} and book a repair at any Loki store or by mail-in.",
    "battery": "Please run the battery check in Settings on your {product} and book a replacement with us.",
    "billing": "I have checked the order on your account and flagged the extra charge for a refund.",
    "returns": "Please start the return for your {product} in your account and print the free label.",
    "water_damage": "Please keep your {product} switched off, let it dry, and bring it to a Loki store.",
    "shipping": "I have checked your {product} shipment and asked the courier for an update today.",
    "software": "Please hold the power button for 15 seconds to restart your {product} in safe mode.",
    "missing_item": "I have sent a request for the missing item from your {product} order.",
}
CLOSINGS = ["Is there anything else I can help you with?", "Let me know if you need anything else.",
            "We'll get this sorted for you.", ""]
CURT = ["Send it in for repair.", "Not our problem.", "Check the website.", "Contact your bank.",
        "Wait a few more days.", "Read the manual."]
GENERIC = ["Please contact support for help with your issue.",
           "Thank you for your message. We will look into it.",
           "Sorry for the inconvenience. Please try again later.",
           "We appreciate your feedback and will get back to you."]
SYSTEM_PROMPT = "You are the customer support assistant for Loki Phones. Be kind, be brief, cite the policy."


def _prompt_text(rng: random.Random, issue: str, product: str) -> str:
    template = rng.choice(ISSUE_PROMPTS[issue])
    order = f"#{rng.randint(10000, 99999)}"
    return template.format(product=product, when=rng.choice(WHEN), order=order) + rng.choice(MOODS)


def _prompt_messages(rng: random.Random, text: str, product: str) -> list[dict]:
    messages: list[dict] = []
    if rng.random() < 0.3:
        messages.append({"role": "system", "content": SYSTEM_PROMPT})
    if rng.random() < 0.1:  # a short multi-turn opening
        messages += [{"role": "user", "content": f"Hi, I have a problem with my {product}."},
                     {"role": "assistant", "content": "Hi! I'm here to help. What happened?"}]
    messages.append({"role": "user", "content": text})
    return messages


def _policy_sentence(issue: str) -> str:
    name, rule = POLICIES[issue]
    return f"Under our {name}, {rule}."


def reply(rng: random.Random, issue: str, product: str, *, empathetic: bool, policy: str | None) -> str:
    """A support reply; `policy` is the issue whose policy it cites (None: no policy)."""
    parts = [rng.choice(EMPATHETIC_OPENINGS if empathetic else NEUTRAL_OPENINGS),
             STEPS[issue].format(product=product)]
    if policy is not None:
        parts.append(_policy_sentence(policy))
    parts.append(rng.choice(CLOSINGS))
    return " ".join(p for p in parts if p)


def _demo_style(rng: random.Random) -> tuple[bool, bool]:
    """(empathetic, cites the right policy): 30% both, 25% policy only, 25% empathy only, 20% neither."""
    x = rng.random()
    if x < 0.30:
        return True, True
    if x < 0.55:
        return False, True
    if x < 0.80:
        return True, False
    return False, False


def _rejected(rng: random.Random, issue: str, product: str) -> str:
    kind = rng.choice(["curt", "generic", "wrong_policy", "no_empathy"])
    if kind == "curt":
        return rng.choice(CURT)
    if kind == "generic":
        return rng.choice(GENERIC)
    if kind == "wrong_policy":
        wrong = rng.choice([i for i in POLICIES if i != issue])
        return reply(rng, issue, product, empathetic=rng.random() < 0.5, policy=wrong)
    return reply(rng, issue, product, empathetic=False, policy=None)


def _unique_prompts(rng: random.Random, products: list[str], n: int) -> list[tuple[str, str, list[dict]]]:
    seen: set[str] = set()
    out = []
    while len(out) < n:
        issue = rng.choice(sorted(POLICIES))
        product = rng.choice(products)
        text = _prompt_text(rng, issue, product)
        if text in seen:
            continue
        seen.add(text)
        out.append((issue, product, _prompt_messages(rng, text, product)))
    return out


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def generate(out: Path = OUT) -> dict[str, int]:
    rng = random.Random(SEED)
    out.mkdir(parents=True, exist_ok=True)
    train = _unique_prompts(rng, TRAIN_PRODUCTS, 900)
    sft_prompts, pref_prompts, pool = train[:500], train[500:800], train[800:]

    sft = []
    for issue, product, messages in sft_prompts:
        for _ in range(4):  # several annotators wrote a reply to each prompt
            empathetic, cites = _demo_style(rng)
            text = reply(rng, issue, product, empathetic=empathetic, policy=issue if cites else None)
            sft.append({"prompt": messages, "completion": [{"role": "assistant", "content": text}],
                        "issue": issue, "product": product})

    preferences = []
    for i in range(500):
        issue, product, messages = pref_prompts[i % len(pref_prompts)]
        chosen = reply(rng, issue, product, empathetic=True, policy=issue)
        rejected = _rejected(rng, issue, product)
        preferences.append({"prompt": messages, "chosen": [{"role": "assistant", "content": chosen}],
                            "rejected": [{"role": "assistant", "content": rejected}],
                            "issue": issue, "product": product})

    prompts = [{"prompt": messages, "issue": issue, "product": product} for issue, product, messages in pool]
    heldout = [{"prompt": messages, "issue": issue, "product": product}
               for issue, product, messages in _unique_prompts(rng, HELDOUT_PRODUCTS, 120)]

    _write_jsonl(out / "sft.jsonl", sft)
    _write_jsonl(out / "preferences.jsonl", preferences)
    _write_jsonl(out / "prompts.jsonl", prompts)
    _write_jsonl(out / "heldout_prompts.jsonl", heldout)
    (out / "policies.json").write_text(json.dumps({
        "policies": {issue: {"name": name, "rule": rule} for issue, (name, rule) in POLICIES.items()},
        "empathetic_openings": EMPATHETIC_OPENINGS,
        "train_products": TRAIN_PRODUCTS,
        "heldout_products": HELDOUT_PRODUCTS,
    }, indent=2) + "\n", encoding="utf-8")
    return {"sft": len(sft), "preferences": len(preferences), "prompts": len(prompts), "heldout": len(heldout)}


if __name__ == "__main__":
    print(generate())
