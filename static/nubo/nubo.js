// Nubo's small progressive enhancements; every page works without them.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  // Destructive actions: <form data-confirm="Question?"> (or the submit button's own
  // data-confirm, for a form with several actions) asks before it submits.
  document.addEventListener("submit", function (event) {
    var button = event.submitter;
    var question = (button && button.getAttribute("data-confirm")) || event.target.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  });

  // A choice whose options may need more fields: <select data-custom-fields="ID"> shows (and
  // enables) the element ID only while the chosen <option data-custom="true">; without scripts
  // the fields are always there, and the server ignores them for the other options.
  function showCustomFields(select) {
    var fields = document.getElementById(select.getAttribute("data-custom-fields"));
    if (!fields) {
      return;
    }
    var option = select.options[select.selectedIndex];
    var custom = !!option && option.getAttribute("data-custom") === "true";
    fields.hidden = !custom;
    fields.disabled = !custom;
  }
  function showAllCustomFields() {
    document.querySelectorAll("select[data-custom-fields]").forEach(showCustomFields);
  }
  document.addEventListener("change", function (event) {
    if (event.target.matches && event.target.matches("select[data-custom-fields]")) {
      showCustomFields(event.target);
    }
  });
  document.addEventListener("DOMContentLoaded", showAllCustomFields);
  document.addEventListener("htmx:afterSwap", showAllCustomFields);

  // A table wider than its box scrolls sideways: the box then takes the keyboard focus (so the
  // arrow keys scroll it) and is a named region; a box that does not scroll is no tab stop.
  function markScrollables() {
    document.querySelectorAll(".overflow-auto").forEach(function (box) {
      if (box.scrollWidth > box.clientWidth + 1) {
        var heading = box.closest("section") && box.closest("section").querySelector("h1, h2, h3");
        box.setAttribute("tabindex", "0");
        box.setAttribute("role", "region");
        box.setAttribute("aria-label", (heading ? heading.textContent.trim() + ": " : "") + "table, scrolls sideways");
      } else if (box.getAttribute("role") === "region") {
        box.removeAttribute("tabindex");
        box.removeAttribute("role");
        box.removeAttribute("aria-label");
      }
    });
  }
  document.addEventListener("DOMContentLoaded", markScrollables);
  document.addEventListener("htmx:afterSwap", markScrollables);
  window.addEventListener("resize", markScrollables);

  // Phone width: the Menu button shows and hides the navigation.
  document.addEventListener("DOMContentLoaded", function () {
    var toggle = document.querySelector(".nubo-menu-toggle");
    var nav = document.getElementById("nubo-nav");
    if (!toggle || !nav) {
      return;
    }
    toggle.addEventListener("click", function () {
      var open = nav.classList.toggle("nubo-open");
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
    });
  });
})();
