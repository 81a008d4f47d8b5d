// Pen-tablet signature pad: pointer events (pen, finger or mouse) on a canvas, sent as a PNG.
(function () {
  "use strict";
  var pad = document.getElementById("pad");
  var form = document.getElementById("sign-form");
  if (!pad || !form) { return; }
  var ctx = pad.getContext("2d");
  var drawing = false, strokes = 0, last = null;
  ctx.lineWidth = 3.2; ctx.lineCap = "round"; ctx.lineJoin = "round"; ctx.strokeStyle = "#111";

  function point(event) {
    var box = pad.getBoundingClientRect();
    return { x: (event.clientX - box.left) * pad.width / box.width, y: (event.clientY - box.top) * pad.height / box.height };
  }
  pad.addEventListener("pointerdown", function (event) {
    event.preventDefault();
    pad.setPointerCapture(event.pointerId);
    drawing = true; last = point(event); strokes += 1;
  });
  pad.addEventListener("pointermove", function (event) {
    if (!drawing) { return; }
    var p = point(event);
    // Pen pressure, when the tablet reports it, makes the line look like ink.
    ctx.lineWidth = event.pressure > 0 && event.pointerType === "pen" ? 1.5 + 4 * event.pressure : 3.2;
    ctx.beginPath(); ctx.moveTo(last.x, last.y); ctx.lineTo(p.x, p.y); ctx.stroke();
    last = p;
  });
  ["pointerup", "pointercancel", "pointerleave"].forEach(function (name) {
    pad.addEventListener(name, function () { drawing = false; });
  });
  document.getElementById("clear").addEventListener("click", function () {
    ctx.clearRect(0, 0, pad.width, pad.height); strokes = 0;
  });
  form.addEventListener("submit", function (event) {
    if (strokes === 0) {
      event.preventDefault();
      alert("枠の中に署名してください。");
      return;
    }
    document.getElementById("signature").value = pad.toDataURL("image/png");
    document.getElementById("done").disabled = true;
  });
})();
