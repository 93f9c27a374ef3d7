"""The sidebar's "Copy link to this view" button: the address as the browser shows it, threshold and ICU
scenario included (`state.sync_url` writes them into the address on every run). The same small script also
puts a "Skip to main content" link first in the page (WCAG 2.4.1): without it the first field of a page was
the 17th Tab stop, behind the menu and the sidebar.

A Streamlit button cannot reach the clipboard (its click runs in Python), so this is a small inline component
(`st.components.v2`, no iframe, nothing fetched): it copies `window.location.href` when pressed and says in a
live region what it copied. Where the browser refuses the clipboard (a page served over plain http to another
machine), it shows the address selected, for Ctrl-C. The address is set with `textContent`/`value`, never as HTML.
"""

from __future__ import annotations

from streamlit.components.v2 import component

LABEL = "Copy link to this view"

_HTML = f"""
<div class="share-link">
  <button type="button" class="share-link-button">{LABEL}</button>
  <div class="share-link-status" role="status" aria-live="polite"></div>
  <input class="share-link-text" type="text" readonly aria-label="Link to this view" hidden>
</div>
"""

_CSS = """
.share-link-button {
  font: inherit; font-size: 0.9rem; padding: 0.35rem 0.8rem; border-radius: 0.5rem; cursor: pointer;
  color: #0B5560; background: #FFFFFF; border: 1px solid #0F6E7A;
}
.share-link-button:hover { background: #E9F1F3; }
.share-link-button:focus-visible { outline: 3px solid #0F6E7A; outline-offset: 2px; }
.share-link-status { font-size: 0.85rem; color: #13343B; margin-top: 0.3rem; overflow-wrap: anywhere; }
.share-link-text { width: 100%; font-size: 0.8rem; margin-top: 0.3rem; color: #13343B; }
"""

_JS = """
function ensureSkipLink() {
  if (document.getElementById('skip-to-main')) return;
  const link = document.createElement('a');
  link.id = 'skip-to-main';
  link.href = '#';
  link.className = 'skip-link';
  link.textContent = 'Skip to main content';
  link.addEventListener('click', (event) => {
    event.preventDefault();
    const main = document.querySelector('[data-testid="stMain"]');
    const target = (main && main.querySelector('h1')) || main;
    if (!target) return;
    target.setAttribute('tabindex', '-1');
    target.focus();
  });
  document.body.prepend(link);
}

export default function (component) {
  ensureSkipLink();
  const root = component.parentElement;
  const button = root.querySelector('.share-link-button');
  const status = root.querySelector('.share-link-status');
  const text = root.querySelector('.share-link-text');
  button.onclick = async () => {
    const url = window.location.href;
    try {
      await navigator.clipboard.writeText(url);
      text.hidden = true;
      status.textContent = 'Copied: ' + url;
    } catch (err) {
      text.hidden = false;
      text.value = url;
      text.focus();
      text.select();
      status.textContent = 'The browser did not allow copying; the link is selected below (Ctrl-C).';
    }
  };
}
"""

_copy_link = component("risk_desk_copy_link", html=_HTML, css=_CSS, js=_JS)


def copy_link_button() -> None:
    """Draw the button where the caller is (the sidebar); pressing it never reruns the app."""
    _copy_link(key="share.copy_link")
