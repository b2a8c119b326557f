// Several devices per purchase on the pay page (a plan's `devices` > 1; docs/x402.md "Several devices"), apart from
// portal.js: the buyer's device shows its session's code and join link (#devices-qr carries data-join-url for a QR
// encoder) and the devices sharing it, each joined one with a Remove button; a device without a session gets a form to
// type a code from another device (filled in from ?join=CODE, the link the QR encodes). Every call acts for this
// device's own address: the router finds its MAC by it. English only for now (portal.js's word table is not shared).
'use strict';
(function () {
  const box = document.getElementById('devices');
  if (!box) return;
  const el = (tag, text) => { const e = document.createElement(tag); if (text !== undefined) e.textContent = text; return e; };
  const post = (path, body) => fetch(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
    .then((r) => r.json().then((j) => ({ ok: r.ok, body: j })));
  const WORDS = {
    ERR_DEVICE_CODE_INVALID: 'That code is not valid (check it on the other device; it changes when the router restarts).',
    ERR_DEVICE_BUSY: 'This device has its own session: it can join another once that one ends.',
    ERR_DEVICE_LIMIT: 'All devices of that purchase are in use: remove one on the other device first.',
    ERR_HTTP_CLIENT_UNKNOWN: 'Connect this device to the WiFi first.',
  };
  const say = (p, error) => { p.textContent = WORDS[error && error.code] || 'That did not work. Please try again.'; };

  function showShared(d) {
    box.replaceChildren(el('h2', 'Share with your other devices'));
    box.append(el('p', `This purchase covers ${d.max_devices} devices. On another device, open this page and enter:`));
    const code = el('p'); code.append(el('strong', d.code)); code.id = 'devices-code';
    const qr = el('div'); qr.id = 'devices-qr'; if (d.join_url) qr.dataset.joinUrl = d.join_url;
    const list = el('ul');
    for (const mac of d.devices) {
      const li = el('li', mac + (mac === d.devices[0] ? ' (bought here)' : ' '));
      if (mac !== d.devices[0]) {
        const b = el('button', 'Remove'); b.type = 'button';
        b.onclick = () => post('/devices/remove', { mac }).then((r) => (r.ok ? load() : say(status, r.body.error)));
        li.append(b);
      }
      list.append(li);
    }
    const status = el('p');
    box.append(code, qr, list, status);
    box.hidden = false;
  }

  function showJoin() {
    box.replaceChildren(el('h2', 'Have a code from another device?'));
    const form = el('form'); form.className = 'card'; form.autocomplete = 'off';
    const input = el('input'); input.id = 'devices-join-code'; input.maxLength = 12; input.required = true; input.autocapitalize = 'characters';
    input.value = new URLSearchParams(location.search).get('join') || '';
    const button = el('button', 'Join'); button.type = 'submit';
    const status = el('p');
    form.append(el('label', 'Code shown on the other device'), input, button);
    form.onsubmit = (e) => {
      e.preventDefault();
      post('/devices/join', { code: input.value }).then((r) => {
        if (!r.ok) return say(status, r.body.error);
        status.textContent = 'Joined. This device is online on the shared purchase.';
        setTimeout(load, 1000);
      }, () => say(status));
    };
    box.append(form, status);
    box.hidden = false;
  }

  function load() {
    fetch('/devices').then((r) => r.json().then((j) => ({ ok: r.ok, body: j }))).then((r) => {
      if (r.ok && r.body.code) return showShared(r.body);
      if (r.ok) { box.hidden = true; return undefined; } // a single-device session: nothing to share
      // No session here: offer the join form when the router sells plans for several devices (or a link brought a code).
      return fetch('/').then((p) => p.json()).then((p) => {
        if (new URLSearchParams(location.search).has('join') || (p.plans || []).some((plan) => plan.devices > 1)) showJoin();
      });
    }).catch(() => undefined);
  }
  load();
}());
