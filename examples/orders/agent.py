"""An orders support agent written as ordinary code: regexes and HTTP calls, no model.

It uses the tools' URLs evalkit hands it (``task.tools[name].url``, through evalkit's proxy), and it carries
two classic bugs that evalkit's detectors must catch:

1. when a write times out it still tells the customer the change was made (silent success);
2. it retries a timed-out refund without an idempotency key (a duplicate refund when the first attempt
   had already gone through).

:func:`answer_honest` is the fixed version: it says what it could not confirm and retries safely.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx

TIMEOUT_S = 1.0


def _url(task: Any, tool: str, **arguments: str) -> str:
    url: str = task.tools[tool].url
    for name, value in arguments.items():
        url = url.replace("{" + name + "}", value)
    return url


def _intent(text: str) -> str:
    lowered = text.lower()
    for intent, words in (("cancel", ("cancel",)), ("refund", ("refund", "money back")),
                          ("address", ("address", "deliver to", "ship to")),
                          ("lookup", ("where", "status", "track", "when"))):
        if any(w in lowered for w in words):
            return intent
    return "unknown"


def _new_address(text: str) -> str | None:
    found = re.search(r"\bto\s+(\d+[^.?!]*)", text)
    return found[1].strip() if found else None


def _lookup(client: httpx.Client, task: Any, order_id: str) -> dict[str, Any] | None:
    for _ in range(2):  # one retry of a read is harmless
        try:
            response = client.get(_url(task, "get_order", order_id=order_id))
        except httpx.TimeoutException:
            continue
        if response.status_code == 200:
            try:
                data: dict[str, Any] = response.json()
                return data
            except ValueError:
                continue
        if response.status_code == 404:
            return None
    return None


def answer(task: Any, *, honest: bool = False) -> str:
    """Handles one customer message; see the module docstring for the bugs (``honest=False``)."""
    text = task.user
    found = re.search(r"\b[A-Z]\d{4}\b", text)
    intent = _intent(text)
    if found is None:
        return "Could you tell me your order number (it looks like A1234)?"
    order_id = found[0]
    with httpx.Client(timeout=TIMEOUT_S, trust_env=False) as client:
        order = _lookup(client, task, order_id)
        if order is None:
            return f"I could not find order {order_id}. Could you check the number?"
        if intent == "lookup" or intent == "unknown":
            return f"Order {order_id} ({order['item']}) is {order['status']}."
        if intent == "cancel":
            try:
                response = client.post(_url(task, "cancel_order", order_id=order_id))
            except httpx.TimeoutException:
                if honest:
                    return f"I could not confirm the cancellation of order {order_id}: the request timed out."
                return f"Your order {order_id} has been cancelled."  # BUG: the write may never have happened
            if response.status_code == 200:
                return f"Your order {order_id} has been cancelled."
            return f"I could not cancel order {order_id}: {response.json().get('error', response.status_code)}."
        if intent == "refund":
            key = str(uuid.uuid4()) if honest else None
            amount = re.search(r"(\d+(?:\.\d\d)?)\s*(?:euros?|eur|dollars?)|[€$]\s*(\d+(?:\.\d\d)?)", text, re.I)
            cents = round(float(amount[1] or amount[2]) * 100) if amount else int(order["total_cents"])
            payload = {"amount_cents": cents, "reason": "customer request", **({"idempotency_key": key} if key else {})}
            for _ in range(2):
                try:
                    response = client.post(_url(task, "refund_order", order_id=order_id), json=payload)
                except httpx.TimeoutException:
                    continue  # BUG (without a key): the first attempt may already have refunded
                if response.status_code in (200, 201):
                    return f"I have refunded order {order_id}."
                return f"I could not refund order {order_id}: {response.json().get('error', response.status_code)}."
            if honest:
                return f"I could not confirm the refund for order {order_id}: the request timed out twice."
            return f"I have refunded order {order_id}."  # BUG: claimed after two timeouts
        address = _new_address(text)
        if address is None:
            return "What is the new delivery address?"
        try:
            response = client.put(_url(task, "update_address", order_id=order_id), json={"address": address})
        except httpx.TimeoutException:
            if honest:
                return f"I could not confirm the address change for order {order_id}: the request timed out."
            return f"The delivery address of order {order_id} has been updated to {address}."  # BUG
        if response.status_code == 200:
            return f"The delivery address of order {order_id} has been updated to {address}."
        return f"I could not change the address of order {order_id}: {response.json().get('error')}."


def answer_honest(task: Any) -> str:
    """The fixed agent: never claims an unconfirmed write, and retries refunds with an idempotency key."""
    return answer(task, honest=True)
