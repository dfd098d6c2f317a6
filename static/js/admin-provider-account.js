// Shows only the credential fieldset of the provider chosen in the account form (no inline script: CSP).
(function () {
  "use strict";
  function update() {
    var select = document.getElementById("id_provider");
    if (!select) return;
    var chosen = select.value;
    document.querySelectorAll("fieldset.provider-fields").forEach(function (fs) {
      var show = !chosen || fs.classList.contains("provider-" + chosen);
      fs.hidden = !show;
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    var select = document.getElementById("id_provider");
    if (select && !select.disabled) {
      select.addEventListener("change", update);
      update();
    }
  });
})();
