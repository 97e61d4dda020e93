"""The For you grid as one browser component: every card drawn and updated by a few lines of
JavaScript, not by Streamlit's React tree (issue 19, "Load").

Why: with each card made of Streamlit elements (poster, Markdown, stars, popover, page link),
every rating re-rendered ~100 React elements in every open tab, ~0.4-0.6 s of browser CPU per
rating; with 8 people rating at once on the server's two cores that rendering was most of the
wait (docs/RELIABILITY.md, Load). Here the grid is one ``st.components.v2`` element: Python sends
the cards as JSON, the script keeps each card's DOM node (keyed by movie id) and touches only what
changed, so a rating costs the browser one removed card, one new card and a few text updates.

What a card shows is what the Streamlit cards showed: the poster in a 2:3 frame, title and year
with a "new" or "exploration" badge, the modality share bar, "In the place of ..." for a card
that took a rated card's slot, five star buttons, "Details" (genres, synopsis, the reason, pick /
score / Q, the trailer player, "Not interested", "Haven't seen it") and "Why this pick?".

Events come back to Python as trigger values, handled by :func:`handle_event` in a widget
callback, before the grid reruns: ``rate`` ``{"id", "stars"}`` (1-5), ``dismiss`` ``{"id",
"kind"}`` and ``why`` ``{"id"}``. Catalog text is only ever set with ``textContent`` (a title
``<img onerror=...>`` shows as text). Posters and trailer excerpts are served by Streamlit's media
endpoint (the URLs ``st.image`` and ``st.audio`` would use), one coordinate per slot, so a session
holds at most one poster and one excerpt per slot.
"""

from __future__ import annotations

import streamlit as st

KEY = "mmrec_grid"

CSS = """
.mmrec-grid { display: flex; flex-wrap: wrap; gap: 1rem; align-items: flex-start; }
.mmrec-card {
  box-sizing: border-box; width: var(--mmrec-card-w, 215px); padding: 0.75rem;
  border: 1px solid color-mix(in srgb, currentColor 20%, transparent); border-radius: 0.5rem;
  display: flex; flex-direction: column; gap: 0.45rem; font-size: 0.95rem; line-height: 1.4;
}
@media (max-width: 640px) { .mmrec-card { width: 100%; } }
.mmrec-frame {
  width: 100%; aspect-ratio: 2 / 3; background: #0b0b0d; border-radius: 4px; overflow: hidden;
  display: flex; align-items: center; justify-content: center; color: rgba(250, 250, 250, 0.7);
  font-size: 0.85rem;
}
.mmrec-frame img { width: 100%; height: 100%; object-fit: contain; display: block; }
.mmrec-title { font-weight: 600; }
.mmrec-year { font-weight: 400; }
.mmrec-badge {
  display: inline-block; margin-left: 0.35rem; padding: 0 0.4rem; border-radius: 0.5rem;
  font-size: 0.75rem; font-weight: 500; vertical-align: 1px;
}
.mmrec-badge.new { background: rgba(28, 131, 225, 0.3); }
.mmrec-badge.explore { background: rgba(128, 61, 245, 0.3); }
.mmrec-small { font-size: 0.8rem; color: color-mix(in srgb, currentColor 70%, transparent); }
.mmrec-bar { display: flex; height: 0.45rem; border-radius: 2px; overflow: hidden; margin: 0.15rem 0; }
.mmrec-bar span:nth-child(1) { background: #3d9df3; }
.mmrec-bar span:nth-child(2) { background: #ffa421; }
.mmrec-bar span:nth-child(3) { background: #21c354; }
.mmrec-stars { display: flex; gap: 0.1rem; }
.mmrec-stars button {
  background: none; border: none; padding: 0.1rem 0.15rem; cursor: pointer; font-size: 1.35rem;
  line-height: 1; color: color-mix(in srgb, currentColor 60%, transparent); border-radius: 4px;
  min-width: 1.9rem;
}
/* A chosen star differs from an empty one by shape (filled ★ vs outline ☆), not by colour alone;
   its gold is mixed with the theme's text colour: 3.3:1 on the light theme's white (plain
   #f5c518 was 1.6:1), lighter on the dark theme. The buttons' names are their aria-labels. */
.mmrec-stars button::before { content: "☆"; }
.mmrec-stars:hover button::before, .mmrec-stars button.on::before { content: "★"; }
.mmrec-stars button:hover ~ button::before { content: "☆"; }
.mmrec-stars:hover button, .mmrec-stars button.on { color: color-mix(in srgb, #f5c518 60%, currentColor); }
.mmrec-stars button:hover ~ button { color: color-mix(in srgb, currentColor 60%, transparent); }
.mmrec-card button:focus-visible, .mmrec-card a:focus-visible, .mmrec-card summary:focus-visible {
  outline: 2px solid #ff6b72; outline-offset: 2px;
}
.mmrec-busy .mmrec-stars, .mmrec-busy .mmrec-acts button { pointer-events: none; opacity: 0.6; }
.mmrec-links { display: flex; gap: 0.75rem; align-items: center; flex-wrap: wrap; }
.mmrec-links a { color: inherit; font-size: 0.9rem; }
.mmrec-details summary { cursor: pointer; font-size: 0.9rem; }
.mmrec-details[open] { padding-top: 0.25rem; }
.mmrec-details p { margin: 0.35rem 0; }
.mmrec-details audio { width: 100%; margin: 0.25rem 0; }
.mmrec-acts { display: flex; gap: 0.4rem; flex-wrap: wrap; }
.mmrec-acts button {
  font: inherit; font-size: 0.85rem; color: inherit; background: transparent; cursor: pointer;
  border: 1px solid color-mix(in srgb, currentColor 35%, transparent); border-radius: 0.5rem;
  padding: 0.25rem 0.6rem;
}
.mmrec-acts button:hover { border-color: #e50914; color: #ff6b72; }
@keyframes mmrec-arrive-0 { from { pointer-events: none; } to { pointer-events: none; } }
@keyframes mmrec-arrive-1 { from { pointer-events: none; } to { pointer-events: none; } }
.mmrec-arrived-0 .mmrec-stars, .mmrec-arrived-0 .mmrec-links { animation: mmrec-arrive-0 .9s linear; }
.mmrec-arrived-1 .mmrec-stars, .mmrec-arrived-1 .mmrec-links { animation: mmrec-arrive-1 .9s linear; }
@media (pointer: coarse), (max-width: 640px) {
  .mmrec-stars button { min-width: 44px; min-height: 44px; }
  .mmrec-acts button, .mmrec-details summary, .mmrec-links a { min-height: 44px; }
}
"""

# The card's DOM is built once per film and then only updated: text with textContent, the poster
# and trailer sources only when they change, so an open "Details" (and a playing trailer) survive
# a rating elsewhere on the grid.
JS = r"""
const NAMES = ["synopsis", "poster", "trailer"];

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = text;
  return e;
}

// Write only what changed: every DOM write costs the browser style and layout work.
function setText(node, text) { if (node.textContent !== text) node.textContent = text; }
function setHidden(node, hidden) { if (node.hidden !== hidden) node.hidden = hidden; }

// One event in flight for the whole grid. Streamlit keeps only the newest trigger value of a
// component when two arrive before the server reads them, so a second click sent while the first
// rating's rerun runs would be lost. Later clicks wait in a queue; the next is sent once the
// server has handled the previous one (``data.events`` went up), or after 15 s without answer.
function pump(root) {
  const q = root.__q;
  if (q.inflight && Date.now() - q.inflight.t < 15000) return;
  q.inflight = null;
  const next = q.queue.shift();
  if (!next) return;
  q.inflight = { t: Date.now(), ack: q.events, id: next.value.id };
  root.__send(next.event, next.value);
}

function pending(root) {
  const q = root.__q;
  const ids = new Set(q.queue.map((e) => e.value.id));
  if (q.inflight) ids.add(q.inflight.id);
  return ids;
}

function build(c, root) {
  const card = el("div", "mmrec-card");
  card.dataset.mmrecCard = String(c.id);
  card.setAttribute("role", "listitem");
  const act = (event, extra) => {
    if (card.classList.contains("mmrec-busy")) return false;  // one action per card
    card.classList.add("mmrec-busy");
    root.__q.queue.push({ event, value: { id: c.id, user: root.__user, ...extra } });
    pump(root);
    return true;
  };
  const frame = el("div", "mmrec-frame");
  const head = el("div");
  const title = el("span", "mmrec-title");
  const year = el("span", "mmrec-year");
  const badges = el("span");
  head.append(title, year, badges);
  const bar = el("div", "mmrec-bar");
  bar.append(el("span"), el("span"), el("span"));
  const shareText = el("div", "mmrec-small");
  const replaced = el("div", "mmrec-small");
  const stars = el("div", "mmrec-stars");
  stars.setAttribute("role", "group");
  for (let s = 1; s <= 5; s++) {
    const b = el("button", null);  // the glyph is CSS (::before): ☆ empty, ★ chosen
    b.type = "button";
    b.dataset.stars = String(s);
    b.setAttribute("aria-label", s === 1 ? "1 star" : `${s} stars`);
    b.addEventListener("click", () => {
      if (act("rate", { stars: s })) {
        stars.querySelectorAll("button").forEach((x, i) => x.classList.toggle("on", i < s));
      }
    });
    stars.append(b);
  }
  const links = el("div", "mmrec-links");
  const details = el("details", "mmrec-details");
  const summary = el("summary", null, "Details");
  const genres = el("p", "mmrec-small");
  const story = el("p");
  const reason = el("p", "mmrec-small");
  const numbers = el("p", "mmrec-small");
  const player = el("div");
  const acts = el("div", "mmrec-acts");
  for (const [kind, label] of [["not_interested", "Not interested"], ["not_seen", "Haven't seen it"]]) {
    const b = el("button", null, label);
    b.type = "button";
    b.addEventListener("click", () => act("dismiss", { kind }));
    acts.append(b);
  }
  details.append(summary, genres, story, reason, numbers, player, acts);
  // the trailer's <audio> is created when Details opens: a closed card costs the browser nothing
  details.addEventListener("toggle", () => { if (details.open) trailer(card); });
  const why = el("a");
  why.append(el("span", null, "💡"), " Why this pick?");
  why.firstChild.setAttribute("aria-hidden", "true");
  why.addEventListener("click", (ev) => {
    // a new tab or window (modifier keys, middle button) follows the link itself
    if (ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.altKey || ev.button !== 0) return;
    ev.preventDefault();
    root.__q.queue.push({ event: "why", value: { id: c.id, user: root.__user } });
    pump(root);
  });
  links.append(details, why);
  card.append(frame, head, bar, shareText, replaced, stars, links);
  card.__parts = { frame, title, year, badges, bar, shareText, replaced, stars, details,
                   genres, story, reason, numbers, player, why };
  return card;
}

function trailer(card) {
  const p = card.__parts, c = card.__data;
  if (!c) return;
  if (c.trailer) {
    let a = p.player.querySelector("audio");
    if (!a) {
      p.player.replaceChildren();
      a = el("audio");
      a.controls = true;
      a.preload = "none";
      p.player.append(a);
    }
    a.setAttribute("aria-label", `Trailer of ${c.title}`);
    if (a.getAttribute("src") !== c.trailer) a.setAttribute("src", c.trailer);
  } else {
    p.player.replaceChildren(el("p", "mmrec-small", c.trailer_problem || "no trailer"));
  }
}

function update(card, c, arrivedClass, whyHref, busy) {
  const p = card.__parts;
  const old = card.__data || {};
  card.__data = c;
  const arrived = c.arrived ? arrivedClass : null;
  for (const k of ["mmrec-arrived-0", "mmrec-arrived-1"]) {
    if (card.classList.contains(k) !== (k === arrived)) card.classList.toggle(k);
  }
  if (card.classList.contains("mmrec-busy") !== busy) {
    card.classList.toggle("mmrec-busy", busy);
    // a click the server refused (or never saw) shows no rating
    if (!busy) p.stars.querySelectorAll("button.on").forEach((b) => b.classList.remove("on"));
  }
  if (c.poster !== old.poster || c.poster_problem !== old.poster_problem || c.alt !== old.alt) {
    if (c.poster) {
      let img = p.frame.querySelector("img");
      if (!img) { img = el("img"); img.decoding = "async"; p.frame.replaceChildren(img); }
      img.alt = c.alt;
      img.src = c.poster;
    } else {
      p.frame.replaceChildren(document.createTextNode(c.poster_problem || "no poster"));
    }
  }
  setText(p.title, c.title);
  setText(p.year, c.year ? ` (${c.year})` : "");
  if (c.arrived !== old.arrived || c.exploration !== old.exploration) {
    p.badges.replaceChildren();
    if (c.arrived) p.badges.append(el("span", "mmrec-badge new", "✦ new"));
    if (c.exploration) p.badges.append(el("span", "mmrec-badge explore", "🎲 exploration"));
  }
  setHidden(p.bar, !c.share);
  setHidden(p.shareText, !c.share);
  if (c.share && String(c.share) !== String(old.share)) {
    c.share.forEach((x, i) => { p.bar.children[i].style.width = `${(100 * x).toFixed(1)}%`; });
    p.shareText.textContent = c.share.map((x, i) => `${NAMES[i]} ${Math.round(100 * x)}%`).join(" · ");
  }
  setHidden(p.replaced, !c.in_place_of);
  setText(p.replaced, c.in_place_of ? `In the place of ${c.in_place_of}` : "");
  if (c.title !== old.title) p.stars.setAttribute("aria-label", `Rate ${c.title}`);
  setText(p.genres, c.genres || "no genres");
  setText(p.story, c.overview || "no synopsis");
  setText(p.reason, c.reason || "");
  setText(p.numbers, `Pick #${c.rank} · score ${c.score} · DQN Q ${c.q}`);
  const href = `${whyHref}${c.id}`;
  if (p.why.getAttribute("href") !== href) p.why.setAttribute("href", href);
  if (p.details.open) trailer(card);
}

export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
  let root = parentElement.querySelector(".mmrec-grid");
  if (!root) {
    root = el("div", "mmrec-grid");
    root.setAttribute("role", "list");
    root.setAttribute("aria-label", "Your picks");
    root.__q = { queue: [], inflight: null, events: 0 };
    parentElement.append(root);
  }
  const d = data || {};
  const q = root.__q;
  root.__send = (event, value) => setTriggerValue(event, value);
  root.__user = d.user;
  q.events = d.events || 0;
  if (q.inflight && q.events > q.inflight.ack) q.inflight = null;  // the server handled it
  const width = `${d.card_width || 215}px`;
  if (root.style.getPropertyValue("--mmrec-card-w") !== width) {
    root.style.setProperty("--mmrec-card-w", width);
  }
  const cards = d.cards || [];
  const arrivedClass = `mmrec-arrived-${d.parity || 0}`;
  const busy = pending(root);
  const wanted = new Set(cards.map((c) => String(c.id)));
  const byId = new Map();
  for (const node of Array.from(root.children)) {
    if (wanted.has(node.dataset.mmrecCard)) byId.set(node.dataset.mmrecCard, node);
    else node.remove();  // first, so the cards after a freed slot are not moved
  }
  cards.forEach((c, i) => {
    const card = byId.get(String(c.id)) || build(c, root);
    update(card, c, arrivedClass, d.why_href || "why?movie=", busy.has(c.id));
    if (root.children[i] !== card) root.insertBefore(card, root.children[i] || null);
  });
  pump(root);
}
"""

_COMPONENT = None


def _component():
    global _COMPONENT
    if _COMPONENT is None:
        _COMPONENT = st.components.v2.component(
            "mmrec_grid", html="", css=CSS, js=JS, isolate_styles=False
        )
    return _COMPONENT


def media_url(data: bytes, mimetype: str, coordinates: str) -> str:
    """The URL Streamlit serves ``data`` at for this session (what ``st.image`` / ``st.audio``
    use): ``coordinates`` names the slot, so the next file at the same slot replaces it."""
    from streamlit import config
    from streamlit.runtime import Runtime

    url = Runtime.instance().media_file_mgr.add(data, mimetype, coordinates)
    base = (config.get_option("server.baseUrlPath") or "").strip("/")
    return f"/{base}{url}" if base and url.startswith("/") else url


EVENTS = ("rate", "dismiss", "why")
EVENT_COUNT = "mmrec_grid_events"


def why_href(user_id: int | None) -> str:
    """The Why page's address for a card, less the movie id the script appends: a new tab
    opened on it continues as the same user (``?user=``), under the server's base path."""
    from streamlit import config

    base = (config.get_option("server.baseUrlPath") or "").strip("/")
    prefix = f"/{base}/" if base else "/"
    user = f"user={int(user_id)}&" if user_id is not None else ""
    return f"{prefix}why?{user}movie="


def render(
    cards: list[dict], card_width: int, parity: int, on_event, user_id: int | None = None
) -> object:
    """Mount the grid (``cards``: one JSON-able dict per card, in slot order) for ``user_id``.
    ``on_event(name, value)`` runs as the widget callback of each event, before the script
    reruns; ``value`` carries the card's ``id`` and the ``user`` the grid was drawn for."""
    return _component()(
        key=KEY,
        data={
            "cards": cards,
            "card_width": int(card_width),
            "parity": int(parity),
            "user": user_id,
            "why_href": why_href(user_id),
            # changes with every event, so the script runs again even when the cards did not
            # change (a refused rating): it then clears the card's "busy" state
            "events": int(st.session_state.get(EVENT_COUNT, 0)),
        },
        height="content",
        **{f"on_{name}_change": _callback(name, on_event) for name in EVENTS},
    )


def _callback(name: str, on_event):
    def run() -> None:
        st.session_state[EVENT_COUNT] = int(st.session_state.get(EVENT_COUNT, 0)) + 1
        state = st.session_state.get(KEY)
        value = state.get(name) if hasattr(state, "get") else None
        mid = value.get("id") if isinstance(value, dict) else None
        if isinstance(mid, int) and not isinstance(mid, bool):
            on_event(name, value)

    return run


def card_payload(p, slot: int, *, share=None, arrived=False, in_place_of=None, cfg=None) -> dict:
    """One card's JSON for the script: plain text (the script sets it as text, never HTML),
    the poster's and trailer excerpt's URLs, or why there is none."""
    from mmrec.ui.media_widgets import poster_alt, poster_jpeg, trailer_clip
    from mmrec.ui.safetext import short

    card = {
        "id": int(p.movie_id),
        "title": str(p.title),
        "year": int(p.year) if p.year else None,
        "alt": poster_alt(p.title, p.year),
        "exploration": bool(p.exploration),
        "arrived": bool(arrived),
        "share": [round(float(x), 4) for x in share] if share is not None else None,
        "in_place_of": str(in_place_of) if in_place_of else None,
        "genres": " · ".join(p.genres),
        "overview": short(p.overview, 3 * cfg.ui.synopsis_chars),
        "reason": str(p.reason or ""),
        "rank": int(p.rank),
        "score": f"{p.score:.3f}",
        "q": f"{p.q:.3f}",
    }
    data, card["poster_problem"] = poster_jpeg(p.poster, 2 * int(cfg.ui.card_width))
    card["poster"] = media_url(data, "image/jpeg", f"{KEY}.poster.{slot}") if data else None
    ex, card["trailer_problem"] = trailer_clip(p.audio)
    card["trailer"] = media_url(ex.data, ex.mime, f"{KEY}.trailer.{slot}") if ex else None
    return card


# ----------------------------------------------------------------------------- AppTest
# AppTest has no element class for a custom component: these read the cards it was sent and
# send it an event the way the browser does (the trigger aggregator widget, a JSON list of
# {"event", "value"}), so page tests and ``mmrec.ui.timing`` drive the same callbacks a click does.


def apptest_data(at) -> dict:
    """What the grid was last sent in an ``AppTest`` run (empty when it is not shown)."""
    import json

    found = at.get("bidi_component")
    if not found:
        return {}
    proto = found[0].proto
    payload = proto.json or (proto.mixed.json if proto.HasField("mixed") else "")
    return dict(json.loads(payload or "{}"))


def apptest_cards(at) -> list[dict]:
    """The cards the grid was last sent in an ``AppTest`` run (empty when it is not shown)."""
    return list(apptest_data(at).get("cards") or [])


def apptest_event(at, name: str, value: dict, timeout: float | None = None):
    """Rerun an ``AppTest`` as if the browser had sent event ``name`` with ``value`` (e.g.
    ``("rate", {"id": 12, "stars": 5})``); like the script, it adds the ``user`` the grid was
    drawn for unless ``value`` names one. Returns the AppTest."""
    import json

    from streamlit.components.v2.bidi_component.main import _make_trigger_id
    from streamlit.proto.WidgetStates_pb2 import WidgetState

    found = at.get("bidi_component")
    if not found:
        raise LookupError("the For you grid is not on the page")
    value = {"user": apptest_data(at).get("user"), **value}
    states = at._tree.get_widget_states()
    trigger = WidgetState(id=_make_trigger_id(found[0].proto.id, "events"))
    trigger.json_trigger_value = json.dumps([{"event": name, "value": value}])
    states.widgets.append(trigger)
    return at._run(states, timeout=timeout)
