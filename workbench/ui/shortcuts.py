"""The Label tab's keys: the help line annotators see and the script that turns keys into the clicks a mouse
would make (so Gradio sees ordinary events)."""

HELP = """**Keys** (outside a text box): `Enter` submit · `s` skip · `f` flag · `u` undo last · `p` edit last ·
`g` guidelines. Pairwise: `a` A better, `b` B better, `t` tie, `x` both bad. Ranking: press the letters best
first, or click the replies best first (`Backspace`, or a click on a ranked reply, takes it back). Feedback: `y` thumbs up, `n` thumbs down. Ratings: `r`, then the response's letter, then 1-5 (e.g. `r b 4`).
In a text box: `Ctrl+Enter` submits, `Esc` leaves the box."""

SHORTCUTS_JS = """
<script>
(() => {
  let ratingFor = null, ratingArmed = false;
  const el = (id) => document.getElementById(id);
  const shown = (id) => { const e = el(id); return !!(e && e.offsetParent !== null); };
  const click = (id) => { const b = el(id); if (b) b.click(); };
  const radio = (id, value) => {
    const input = document.querySelector(`#${id} input[type=radio][value="${value}"]`);
    if (input) input.click();
  };
  const setText = (id, fn) => {
    const box = document.querySelector(`#${id} textarea, #${id} input`);
    if (!box) return;
    box.value = fn(box.value);
    box.dispatchEvent(new Event('input', {bubbles: true}));
  };
  document.addEventListener('keydown', (e) => {
    const t = e.target;
    const typing = t && (t.tagName === 'TEXTAREA' || (t.tagName === 'INPUT' && !['radio', 'checkbox'].includes(t.type)));
    const go = () => click(shown('next') ? 'next' : 'submit');  // after a review vote, Enter moves on
    if ((e.ctrlKey || e.metaKey) && e.key === 'Enter') { e.preventDefault(); go(); return; }
    if (typing) { if (e.key === 'Escape') t.blur(); return; }
    if (e.ctrlKey || e.metaKey || e.altKey || !shown('label-actions')) return;
    const key = e.key.toLowerCase();
    if (ratingArmed) {
      if (ratingFor === null && 'abcde'.includes(key)) { ratingFor = key.toUpperCase(); e.preventDefault(); return; }
      if (ratingFor !== null && '12345'.includes(key)) { radio(`rating-${ratingFor}`, key); }
      ratingArmed = false; ratingFor = null; e.preventDefault(); return;
    }
    if (key === 'enter') { e.preventDefault(); go(); return; }
    const act = {s: 'skip', f: 'flag', u: 'undo', p: 'edit'}[key];
    if (act) { e.preventDefault(); click(act); return; }
    if (key === 'g') { e.preventDefault(); const h = document.querySelector('#guidelines-box button, #guidelines-box .label-wrap'); if (h) h.click(); return; }
    if (key === 'r' && shown('compare-group')) { ratingArmed = true; ratingFor = null; e.preventDefault(); return; }
    if (shown('choice')) {
      const pick = {a: 'A', b: 'B', t: 'tie', x: 'both bad'}[key];
      if (pick) { e.preventDefault(); radio('choice', pick); }
      return;
    }
    if (shown('thumb')) {
      const pick = {y: 'up', n: 'down', '+': 'up', '-': 'down'}[key];
      if (pick) { e.preventDefault(); radio('thumb', pick); }
      return;
    }
    if (shown('order')) {
      if ('abcde'.includes(key) && key.length === 1) { e.preventDefault(); setText('order', (v) => rank(v, key.toUpperCase())); }
      else if (e.key === 'Backspace') { e.preventDefault(); setText('order', (v) => v.slice(0, -1)); }
    }
  });
  // Ranking by mouse, as Argilla's ranking question: a click on a reply ranks it next; a click on a ranked reply
  // takes it and those ranked after it back. Each pane shows its rank as a badge (CSS: .reply-pane[data-rank]).
  const rank = (order, letter) => order.includes(letter) ? order.slice(0, order.indexOf(letter)) : order + letter;
  document.addEventListener('click', (e) => {
    const pane = e.target.closest && e.target.closest('.reply-pane');
    if (!pane || !shown('order') || e.target.closest('a')) return;
    setText('order', (v) => rank(v, pane.id.slice(-1)));
  });
  let shownOrder = null;
  setInterval(() => {  // the server sets the box without an input event (a new item): follow it
    const box = document.querySelector('#order textarea, #order input');
    const order = box && shown('order') ? box.value.toUpperCase() : '';
    if (order === shownOrder) return;
    shownOrder = order;
    document.querySelectorAll('.reply-pane').forEach((pane) => {
      const at = order.indexOf(pane.id.slice(-1));
      if (at >= 0) pane.dataset.rank = String(at + 1); else delete pane.dataset.rank;
    });
  }, 150);
})();
</script>
"""
