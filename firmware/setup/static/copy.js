// boxidr setup page: "Copy" buttons. A <button data-copy="ID" hidden> copies the value of the
// field with that id. The page works without this script: the button stays hidden and the
// field can be selected and copied by hand.
"use strict";
document.querySelectorAll("button[data-copy]").forEach(function (button) {
  var label = button.textContent;
  var field = document.getElementById(button.getAttribute("data-copy"));
  if (!field) {
    return;
  }
  button.hidden = false;
  button.addEventListener("click", function () {
    var say = function (text) {
      button.textContent = text;
      window.setTimeout(function () { button.textContent = label; }, 2000);
    };
    field.select();
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(field.value).then(
        function () { say("Copied"); },
        function () { say("Press Ctrl+C to copy"); }
      );
    } else {
      say("Press Ctrl+C to copy");
    }
  });
});
