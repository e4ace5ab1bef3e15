// The "Verify an enclave" page: loads attestlog's client decision
// (WebAssembly, from this log) and runs it on the enclave the form names.
// Every value shown is set as text, never as HTML.
(function () {
  "use strict";
  const form = document.getElementById("verify-form");
  if (!form) return;
  const base = location.pathname.replace(/verify$/, "");
  const button = document.getElementById("verify-button");
  const verdict = document.getElementById("verdict");
  const timing = document.getElementById("timing");
  const list = document.getElementById("checks");
  let files = {};

  function show(ok, text) {
    verdict.hidden = false;
    verdict.textContent = text;
    verdict.className = ok ? "ok" : "bad";
  }

  const ready = new Promise(function (resolve) { globalThis.__attestlogReady = resolve; });
  const go = new Go();
  const loaded = WebAssembly.instantiateStreaming(fetch(base + "verify/wasm/attestlog.wasm"), go.importObject)
    .then(function (r) { go.run(r.instance); return ready; });

  fetch(base + "verify/config.json").then(function (r) { return r.json(); }).then(function (c) {
    document.getElementById("enclave").value = c.enclave || "";
    document.getElementById("policy").value = c.policy || "";
    files = c.files || {};
    const names = Object.keys(files);
    document.getElementById("files").textContent = names.length ? "With the files the policy names: " + names.join(", ") + "." : "";
  });

  loaded.then(function () {
    button.disabled = false;
    button.textContent = "Verify";
  }, function (err) {
    show(false, "The verifier did not load: " + err);
  });

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    button.disabled = true;
    list.replaceChildren();
    verdict.hidden = true;
    timing.hidden = true;
    const url = document.getElementById("enclave").value;
    const policy = document.getElementById("policy").value;
    const t0 = performance.now();
    globalThis.__attestlog.fetchAndVerify(url, policy, { files: files }).then(function (json) {
      const ms = performance.now() - t0;
      const v = JSON.parse(json);
      for (const c of v.checks) {
        const li = document.createElement("li");
        li.className = c.ok ? "ok" : "bad";
        li.textContent = (c.ok ? "✓ " : "✗ ") + c.name + ": " + c.reason;
        list.appendChild(li);
      }
      show(v.ok, v.ok ? "TRUSTED" : "NOT TRUSTED");
      timing.hidden = false;
      timing.textContent = "Decided in " + ms.toFixed(1) + " ms (fetch included).";
      timing.dataset.ms = String(ms);
    }, function (err) {
      show(false, "NOT TRUSTED: " + err.message);
    }).finally(function () { button.disabled = false; });
  });
})();
