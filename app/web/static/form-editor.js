// Live preview for the form editor: after a pause in typing, the draft is printed for the 見本
// household and page 1 is shown; problems (with their lines) are listed instead when it cannot print.
(function () {
  "use strict";
  var form = document.getElementById("form-editor");
  if (!form) { return; }
  var image = document.getElementById("preview-image");
  var list = document.getElementById("preview-problems");
  var state = document.getElementById("preview-state");
  var timer = null, sequence = 0;

  function show(problems) {
    list.textContent = "";
    problems.forEach(function (text) {
      var item = document.createElement("li");
      item.textContent = text;
      list.appendChild(item);
    });
  }
  function refresh() {
    var mine = ++sequence;
    state.textContent = "（作成中…）";
    var body = new FormData(form);
    body.delete("format");
    fetch(form.dataset.preview, { method: "POST", body: body, credentials: "same-origin",
                                  headers: { "X-CSRFToken": form.elements.csrf_token.value } })
      .then(function (response) { return response.json(); })
      .then(function (data) {
        if (mine !== sequence) { return; }  // an older answer arriving late
        if (data.ok) {
          show([]);
          image.src = data.png; image.hidden = false;
          state.textContent = "（見本の世帯で印刷・全" + data.pages + "ページ）";
        } else {
          show(data.problems); state.textContent = "（印刷できません）";
        }
      })
      .catch(function () { state.textContent = "（プレビューを取得できません）"; });
  }
  ["definition", "template"].forEach(function (id) {
    document.getElementById(id).addEventListener("input", function () {
      clearTimeout(timer); timer = setTimeout(refresh, 700);
    });
  });
  refresh();
})();
