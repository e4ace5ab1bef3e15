// The "Verify an enclave" page: loads attestlog's client decision
// (WebAssembly, and the npm package's JavaScript, from this log) and runs
// it on the enclave the form names.
// Every value shown is set as text, never as HTML.
(function () {
  "use strict";
  const building = document.getElementById("building");
  if (building) {
    // The module is being built: show its progress, reload when ready.
    const step = document.getElementById("build-step");
    const poll = function () {
      fetch(building.dataset.status, { cache: "no-store" }).then(function (r) { return r.json(); }).then(function (s) {
        if (s.ready || !s.building) { location.reload(); return; }
        step.textContent = s.step || "";
        setTimeout(poll, 2000);
      }, function () { setTimeout(poll, 5000); });
    };
    setTimeout(poll, 2000);
    return;
  }
  const form = document.getElementById("verify-form");
  if (!form) return;
  const base = location.pathname.replace(/verify$/, "");
  const button = document.getElementById("verify-button");
  const verdict = document.getElementById("verdict");
  const timing = document.getElementById("timing");
  const list = document.getElementById("checks");
  let files = {};
  let relay = "";
  const messageForm = document.getElementById("message-form");
  const messageButton = document.getElementById("message-button");
  const answer = document.getElementById("answer");
  const answerNote = document.getElementById("answer-note");

  function show(ok, text) {
    verdict.hidden = false;
    verdict.textContent = text;
    verdict.className = ok ? "ok" : "bad";
  }

  // The npm package's own code (@attestlog/verify's index.js), served by
  // this log, loading the module from this log.
  const loaded = import(base + "verify/npm/index.js").then(function (pkg) {
    return pkg.load({ wasmURL: base + "verify/wasm/attestlog.wasm" }).then(function () { return pkg; });
  });

  fetch(base + "verify/config.json").then(function (r) { return r.json(); }).then(function (c) {
    document.getElementById("enclave").value = c.enclave || "";
    document.getElementById("policy").value = c.policy || "";
    files = c.files || {};
    const names = Object.keys(files);
    document.getElementById("files").textContent = names.length ? "With the files the policy names: " + names.join(", ") + "." : "";
    if (c.relay && messageForm) {
      relay = new URL(c.relay, location.href).href;
      messageForm.hidden = false;
    }
  });

  loaded.then(function () {
    button.disabled = false;
    button.textContent = "Verify";
    if (messageButton) messageButton.disabled = false;
  }, function (err) {
    show(false, "The verifier did not load: " + err.message);
  });

  // Send a message: attestedFetch verifies, seals to the attested key
  // and posts through the relay; the answer is shown as text.
  if (messageForm) messageForm.addEventListener("submit", function (ev) {
    ev.preventDefault();
    messageButton.disabled = true;
    answer.hidden = true;
    answerNote.hidden = true;
    const policy = document.getElementById("policy").value;
    const text = document.getElementById("message").value;
    const body = JSON.stringify({ model: "attestlog-demo-echo", messages: [{ role: "user", content: text }] });
    loaded.then(function (pkg) {
      return pkg.attestedFetch("/v1/chat/completions", { method: "POST", headers: { "Content-Type": "application/json" }, body: body },
        { policy: policy, relay: relay, files: files, timeoutMs: 60000 });
    }).then(function (r) {
      const info = r.attestlog;
      return r.text().then(function (t) {
        let content = t;
        try { content = JSON.parse(t).choices[0].message.content; } catch (e) { /* not a chat answer: show it as is */ }
        answer.hidden = false;
        answer.className = r.ok ? "ok" : "bad";
        answer.textContent = content;
        answerNote.hidden = false;
        answerNote.textContent = "HTTP " + r.status + ", sealed to the " + info.kem + " key of attested key set " + info.keySet.slice(0, 16) + "…, through " + info.relay + ".";
      });
    }, function (err) {
      answer.hidden = false;
      answer.className = "bad";
      answer.textContent = "NOT SENT: " + err.message + (err.code ? " (" + err.code + ")" : "");
    }).finally(function () { messageButton.disabled = false; });
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
    loaded.then(function (pkg) {
      return pkg.fetchAndVerify(url, policy, { files: files, timeoutMs: 60000 });
    }).then(function (v) {
      const ms = performance.now() - t0;
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
      show(false, "NOT TRUSTED: " + err.message + (err.code ? " (" + err.code + ")" : ""));
    }).finally(function () { button.disabled = false; });
  });
})();
