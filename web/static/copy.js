// Progressive enhancement: show a copy button next to shortened values.
// Everything works without it (values are links, title attributes and
// JSON twins carry the full text).
"use strict";
document.querySelectorAll("button.copy[data-copy]").forEach(function (b) {
  b.hidden = false;
  b.addEventListener("click", function () {
    var v = b.getAttribute("data-copy");
    var done = function () { b.textContent = "Copied"; setTimeout(function () { b.textContent = "Copy"; }, 1500); };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(v).then(done, function () { select(b); });
    } else {
      select(b);
    }
  });
});
// select selects the value next to b (shown in full), for Ctrl-C.
function select(b) {
  var code = b.parentNode.querySelector("code");
  if (!code) return;
  code.textContent = b.getAttribute("data-copy");
  var r = document.createRange();
  r.selectNodeContents(code);
  var s = window.getSelection();
  s.removeAllRanges();
  s.addRange(r);
  b.textContent = "Press Ctrl-C";
}
